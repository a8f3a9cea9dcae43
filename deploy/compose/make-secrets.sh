#!/usr/bin/env bash
# Writes the secrets docker-compose.yml reads (once; existing files are
# kept): the MariaDB root password and each lockstepd's config file (admin
# token and backend DSN). They stay out of git (.gitignore).
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir" && chmod 700 "$dir"
rand() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
[ -s "$dir/db_root_password" ] || { rand > "$dir/db_root_password"; chmod 600 "$dir/db_root_password"; }
[ -s "$dir/admin_token" ] || { rand > "$dir/admin_token"; chmod 600 "$dir/admin_token"; }
pw=$(cat "$dir/db_root_password"); tok=$(cat "$dir/admin_token")
for i in 1 2 3; do
  f="$dir/lockstep-n$i.json"
  [ -s "$f" ] || printf '{"admin-token": "%s", "backend-dsn": "root:%s@tcp(db%d:3306)/"}\n' "$tok" "$pw" "$i" > "$f"
done
[ -s "$dir/lockstep-w1.json" ] || printf '{"admin-token": "%s"}\n' "$tok" > "$dir/lockstep-w1.json"
chmod 600 "$dir"/*.json
echo "secrets in $dir (admin token: $dir/admin_token)"
