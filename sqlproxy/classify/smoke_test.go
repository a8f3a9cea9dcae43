package classify

import (
	"fmt"
	"testing"
)

func TestSmoke(t *testing.T) {
	for _, s := range []string{
		"INSERT INTO t (a,b) VALUES (UUID(), /* x */ uuid_short ( ) ), (SYSDATE(3), CURRENT_USER)",
		"UPDATE t SET a = USER(), b=@x, c=(@y := c+1), d=CONNECTION_ID() WHERE id = @X",
		"INSERT INTO t VALUES (0x41, /*!50000 UUID() */ 1, /*M!100500 UUID() */ 2)",
		"SELECT NEXT VALUE FOR s", "INSERT INTO t VALUES (NEXT VALUE FOR s)", "CREATE TABLE t (a char(36) default (uuid()))",
		"CREATE OR REPLACE ALGORITHM=MERGE VIEW v AS SELECT 1", "CREATE DEFINER=CURRENT_USER() TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = NOW()",
		"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = UUID()", "SET PASSWORD = PASSWORD('x')", "ALTER USER CURRENT_USER() IDENTIFIED BY 'x'",
		"SET autocommit=ON", "SET autocommit='off'", "SET GLOBAL x=1", "SET @@global.x=1", "UPDATE t SET a = @@hostname", "INSERT INTO t SELECT * FROM mysql.user",
		"DELETE FROM t LIMIT 1", "START TRANSACTION", "BEGIN", "INSERT INTO db1.t VALUES (RAND(), LAST_INSERT_ID())",
	} {
		st := Classify(s, testPins())
		fmt.Printf("%-9v %-22q %q vars=%v rand=%v table=%q tx=%v err=%v\n", st.Class, st.Kind, st.SQL, st.UserVars, st.UsesRand, st.InsertTable, st.Tx, st.Err)
	}
}
