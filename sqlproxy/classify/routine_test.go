package classify

import (
	"strings"
	"testing"
)

func TestProcedureBodyCheck(t *testing.T) {
	pins := Pins{CurrentUser: "'app'@'%'"}
	ok := []string{
		"CREATE PROCEDURE p(IN a INT, b VARCHAR(10)) INSERT INTO t VALUES (a, b)",
		"CREATE PROCEDURE p(a INT) BEGIN END",
		"CREATE PROCEDURE db1.`p q`(a INT) DETERMINISTIC MODIFIES SQL DATA COMMENT 'x' SQL SECURITY DEFINER BEGIN INSERT INTO t VALUES (a); END",
		"CREATE OR REPLACE DEFINER=`u`@`%` PROCEDURE p(a INT) BEGIN INSERT INTO t VALUES (a); END",
		"CREATE PROCEDURE IF NOT EXISTS p(a INT) BEGIN UPDATE t SET b = b + a WHERE id = a; END",
		`CREATE PROCEDURE p(IN a INT, IN s TEXT)
		BEGIN
		  DECLARE x, y INT DEFAULT 0;
		  DECLARE done CONDITION FOR SQLSTATE '45000';
		  DECLARE CONTINUE HANDLER FOR SQLSTATE '23000', NOT FOUND SET x = -1;
		  SET x = a + 1, y := x * 2;
		  SELECT COUNT(*) INTO y FROM t WHERE id > a;
		  SELECT b, c INTO x, y FROM t WHERE id = a ORDER BY id LIMIT 1;
		  IF x > 1 THEN UPDATE t SET b = 'z' WHERE id = x;
		  ELSEIF x = 0 THEN DELETE FROM t WHERE id = a;
		  ELSE REPLACE INTO t VALUES (x, s); END IF;
		  CASE x WHEN 1 THEN INSERT INTO t VALUES (1, NOW()); ELSE BEGIN END; END CASE;
		  CASE WHEN y = CASE WHEN x THEN 1 ELSE 2 END THEN SET y = 0; END CASE;
		  lbl: WHILE x < 10 DO SET x = x + 1; IF x = 5 THEN LEAVE lbl; END IF; END WHILE lbl;
		  l2: LOOP SET x = x - 1; IF x < 0 THEN LEAVE l2; END IF; ITERATE l2; END LOOP;
		  REPEAT SET y = y + 1; UNTIL y > 3 END REPEAT;
		  INSERT INTO t (a, r) VALUES (RAND(), LAST_INSERT_ID());
		  UPDATE t SET b = 1 ORDER BY id LIMIT 2;
		  DO x + 1;
		  IF a < 0 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'negative'; END IF;
		END`,
	}
	for _, q := range ok {
		st := Classify(q, pins)
		if st.Class != DDL || st.Routine == nil || st.Routine.Why != "" {
			t.Errorf("%s\n  got %v %v %+v, want DDL with a callable procedure", q, st.Class, st.Err, st.Routine)
		}
	}
	if st := Classify("CREATE PROCEDURE db1.`p q`(a INT) BEGIN END", pins); st.Routine.DB != "db1" || st.Routine.Name != "p q" {
		t.Errorf("name: %+v", st.Routine)
	}
	if st := Classify("CREATE PROCEDURE p(a INT) BEGIN INSERT INTO t VALUES (a); REPLACE INTO db2.u SELECT * FROM t ORDER BY id; INSERT INTO t VALUES (a + 1); UPDATE v SET a = 1; END", pins); strings.Join(st.Routine.Inserts, ",") != "t,db2.u" {
		t.Errorf("inserts: %+v", st.Routine)
	}
	refused := map[string]string{
		"CREATE PROCEDURE p() SELECT * FROM t":                                                  "returns a result set",
		"CREATE PROCEDURE p() BEGIN INSERT INTO t VALUES (1); SELECT 1; END":                    "returns a result set",
		"CREATE PROCEDURE p(OUT a INT) BEGIN SET a = 1; END":                                    "OUT parameter",
		"CREATE PROCEDURE p(INOUT a INT) BEGIN SET a = 1; END":                                  "INOUT parameter",
		"CREATE PROCEDURE p(s TEXT) BEGIN PREPARE x FROM s; EXECUTE x; END":                     "dynamic SQL",
		"CREATE PROCEDURE p() BEGIN CALL q(); END":                                              "calls another procedure",
		"CREATE PROCEDURE p() BEGIN START TRANSACTION; INSERT INTO t VALUES (1); COMMIT; END":   "transactions",
		"CREATE PROCEDURE p() BEGIN INSERT INTO t VALUES (1); ROLLBACK; END":                    "transactions",
		"CREATE PROCEDURE p() BEGIN DECLARE c CURSOR FOR SELECT a FROM t; OPEN c; END":          "cursor",
		"CREATE PROCEDURE p() BEGIN FOR i IN 1..3 DO INSERT INTO t VALUES (i); END FOR; END":    "FOR loop",
		"CREATE PROCEDURE p() BEGIN DELETE FROM t LIMIT 1; END":                                 "LIMIT",
		"CREATE PROCEDURE p() BEGIN DECLARE x INT; SELECT a INTO x FROM t LIMIT 1; END":         "LIMIT",
		"CREATE PROCEDURE p() BEGIN SET autocommit = 0; END":                                    "not a local variable",
		"CREATE PROCEDURE p() BEGIN CREATE TABLE u (a INT); END":                                "CREATE TABLE",
		"CREATE PROCEDURE p() BEGIN INSERT INTO t SELECT * FROM information_schema.tables; END": "refuses",
		"CREATE PROCEDURE p() BEGIN DECLARE x INT; SELECT a INTO y FROM t WHERE id = 1; END":    "other than local variables",
		"CREATE PROCEDURE p() BEGIN INSERT INTO t VALUES (1) END":                               "could not parse",
	}
	for q, want := range refused {
		st := Classify(q, pins)
		if st.Class != DDL || st.Routine == nil || !strings.Contains(st.Routine.Why, want) {
			t.Errorf("%s\n  got %v %v %+v, want DDL with Why containing %q", q, st.Class, st.Err, st.Routine, want)
		}
	}
	// Functions that differ between nodes refuse the CREATE itself, as before.
	for _, q := range []string{
		"CREATE PROCEDURE p() BEGIN INSERT INTO t VALUES (UUID()); END",
		"CREATE PROCEDURE p() BEGIN INSERT INTO t VALUES (CONNECTION_ID()); END",
		"CREATE PROCEDURE p() BEGIN INSERT INTO t VALUES (@x); END",
	} {
		if st := Classify(q, pins); st.Class != Refused {
			t.Errorf("%s: got %v, want Refused", q, st.Class)
		}
	}
}

func TestCall(t *testing.T) {
	pins := Pins{UUID: func() string { return "u-1" }, CurrentUser: "'app'@'%'"}
	st := Classify("CALL db1.p(1, 'a', @v, UUID())", pins)
	if st.Class != Write || st.Kind != "CALL" || st.Routine == nil || st.Routine.DB != "db1" || st.Routine.Name != "p" {
		t.Fatalf("got %v %v %+v", st.Class, st.Err, st.Routine)
	}
	if st.SQL != "CALL db1.p(1, 'a', @v, 'u-1')" || len(st.UserVars) != 1 || st.UserVars[0] != "v" {
		t.Errorf("got SQL %q vars %v", st.SQL, st.UserVars)
	}
	if st := Classify("CALL p", pins); st.Class != Write || st.Routine.Name != "p" {
		t.Errorf("CALL p: got %v %v", st.Class, st.Err)
	}
	if st := Classify("CALL p(SLEEP(1))", pins); st.Class != Refused {
		t.Errorf("CALL p(SLEEP(1)): got %v", st.Class)
	}
	pins.InTx = true
	if st := Classify("CALL p(1)", pins); st.Class != Refused || !strings.Contains(st.Err.Error(), "inside a transaction") {
		t.Errorf("CALL in a transaction: got %v %v", st.Class, st.Err)
	}
}

func TestCheckProcedureReadOnly(t *testing.T) {
	pins := Pins{CurrentUser: "'app'@'%'"}
	readOnly := []string{
		"CREATE PROCEDURE p() SELECT * FROM t",
		"CREATE PROCEDURE test_mrss() BEGIN SELECT 1 AS value UNION SELECT 2 AS value; SELECT 3 AS value; SELECT 4 AS value UNION SELECT 5 AS value UNION SELECT 6 AS value; END",
		`CREATE PROCEDURE test_signal(ret INT) BEGIN SELECT ret; SIGNAL SQLSTATE '45001' SET MESSAGE_TEXT = "an error", MYSQL_ERRNO = 45001; END`,
		`CREATE PROCEDURE p(a INT) BEGIN
		  DECLARE x INT DEFAULT 0;
		  DECLARE EXIT HANDLER FOR SQLEXCEPTION RESIGNAL;
		  SELECT COUNT(*) INTO x FROM t WHERE id < a;
		  SET x = x + 1;
		  IF x > 3 THEN SELECT x AS many; ELSE SELECT * FROM t WHERE id = a; END IF;
		  WHILE x > 0 DO SET x = x - 1; END WHILE;
		  SELECT NOW(), RAND();
		END`,
	}
	for _, q := range readOnly {
		st := Classify(q, pins)
		if st.Class != DDL || st.Routine == nil || !st.Routine.ReadOnly || !strings.Contains(st.Routine.Why, "returns a result set") {
			t.Errorf("%s\n  got %v %v %+v, want a read-only procedure", q, st.Class, st.Err, st.Routine)
		}
	}
	notReadOnly := []string{
		"CREATE PROCEDURE p() BEGIN INSERT INTO t VALUES (1); SELECT 1; END",
		"CREATE PROCEDURE p() BEGIN SELECT 1; UPDATE t SET a = 1 WHERE id = 1; END",
		"CREATE PROCEDURE p() BEGIN SELECT 1; DELETE FROM t WHERE id = 1; END",
		"CREATE PROCEDURE p() BEGIN SELECT 1; CALL q(); END",
		"CREATE PROCEDURE p() BEGIN SELECT 1; COMMIT; END",
		"CREATE PROCEDURE p() BEGIN SELECT 1; SET @x = 1; END",
		"CREATE PROCEDURE p() BEGIN SELECT 1; SET autocommit = 0; END",
		"CREATE PROCEDURE p() BEGIN SELECT 1; CREATE TABLE u (a INT); END",
		"CREATE PROCEDURE p(s TEXT) BEGIN SELECT 1; PREPARE x FROM s; END",
		"CREATE PROCEDURE p() BEGIN SELECT * FROM t FOR UPDATE; END",
		"CREATE PROCEDURE p() BEGIN SELECT @x := a FROM t; END",
		"CREATE PROCEDURE p() BEGIN SELECT GET_LOCK('a', 1); END",
		"CREATE PROCEDURE p() BEGIN DECLARE c CURSOR FOR SELECT a FROM t; SELECT 1; END",
		"CREATE PROCEDURE p(OUT a INT) BEGIN SELECT 1; END",
		"CREATE PROCEDURE p() BEGIN SELECT 1 INTO OUTFILE '/tmp/x'; END",
	}
	for _, q := range notReadOnly {
		st := Classify(q, pins)
		if st.Class == DDL && st.Routine != nil && (st.Routine.ReadOnly || st.Routine.Why == "") {
			t.Errorf("%s\n  got %+v, want a refused procedure", q, st.Routine)
		}
	}
	if st := Classify("CALL db1.p(1)", Pins{InTx: true}); st.Class != Refused || st.Routine == nil || st.Routine.DB != "db1" || st.Routine.Name != "p" {
		t.Errorf("CALL in a transaction: got %v %+v, want Refused naming db1.p", st.Class, st.Routine)
	}
	// Bodies without result sets keep their verdict (ordered or refused).
	for _, q := range []string{
		"CREATE PROCEDURE p(a INT) BEGIN DECLARE x INT; SELECT a INTO x FROM t WHERE id = a; END",
		"CREATE PROCEDURE p() BEGIN SIGNAL SQLSTATE '45000'; END",
	} {
		if st := Classify(q, pins); st.Routine == nil || st.Routine.ReadOnly || st.Routine.Why != "" {
			t.Errorf("%s\n  got %+v, want an ordered procedure", q, st.Routine)
		}
	}
}
