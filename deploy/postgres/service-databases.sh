#!/bin/sh
# One database per service (R-X-1: no service reads another's tables), each owned by a login
# role of the same name that can reach no other service's database. The services connect as
# their role, not as the `postgres` superuser: a leaked service password or an injected
# statement then reaches one service's tables, not every database, the server's files
# (COPY ... PROGRAM) or its configuration.
#
# The postgres image runs this once, when its data volume is empty. It is also safe to run
# again, and that is how a volume created before the roles existed is upgraded: it creates
# what is missing, sets the passwords and hands existing tables to the service's role
# (docker compose exec postgres /docker-entrypoint-initdb.d/10-service-databases.sh).
#
# <SERVICE>_DB_PASSWORD gives a service its role (compose requires INTAKE_DB_PASSWORD); a
# service without one gets its database only, owned by `postgres`, until its password is set
# and this is run again. Passwords end up in URLs: hex only (`openssl rand -hex 32`).
#
# Everything runs in a subshell: the image sources a script that is not executable (a checkout
# that lost the mode), and `set -eu` must not leak into its entrypoint.

fupin_sql() {
    psql -v ON_ERROR_STOP=1 -X -q --username "${POSTGRES_USER:-postgres}" "$@"
}

fupin_service_databases() (
    set -eu
    for service in intake rating risk disbursement industry; do
        password=$(printenv "$(echo "$service" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD" || true)
        fupin_sql --dbname postgres -v db="$service" <<'SQL'
-- Collated byte-wise ("C"), as the tests' server is: an area's listing (`area_code like
-- '410311100%'`) can use its index only under C; under the image's default en_US.utf8 every
-- page reads the table.
select format('create database %I template template0 encoding %L locale_provider %L lc_collate %L lc_ctype %L',
              :'db', 'UTF8', 'libc', 'C', 'C')
where not exists (select from pg_database where datname = :'db') \gexec
-- By default every role may connect to every database: only the owner (and superusers) may.
select format('revoke all on database %I from public', :'db') \gexec
SQL
        [ -n "$password" ] || continue
        fupin_sql --dbname postgres -v db="$service" -v password="$password" <<'SQL'
select format('create role %I login', :'db')
where not exists (select from pg_roles where rolname = :'db') \gexec
select format('alter role %I with login nosuperuser nocreatedb nocreaterole noreplication password %L',
              :'db', :'password') \gexec
select format('alter database %I owner to %I', :'db', :'db') \gexec
SQL
        # Tables (with their sequences), views, functions and types a superuser created before
        # the role existed: a later migration's `create or replace` needs to own them.
        fupin_sql --dbname "$service" -v db="$service" <<'SQL'
select format('alter table %I.%I owner to %I', schemaname, tablename, :'db')
from pg_tables where schemaname = 'public' and tableowner <> :'db' \gexec
select format('alter view %I.%I owner to %I', schemaname, viewname, :'db')
from pg_views where schemaname = 'public' and viewowner <> :'db' \gexec
select format('alter routine %s owner to %I', p.oid::regprocedure, :'db')
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = 'public' and pg_get_userbyid(p.proowner) <> :'db'
  and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e') \gexec
select format('alter type %s owner to %I', t.oid::regtype, :'db')
from pg_type t join pg_namespace n on n.oid = t.typnamespace
where n.nspname = 'public' and t.typtype in ('e', 'd', 'r')
  and pg_get_userbyid(t.typowner) <> :'db'
  and not exists (select from pg_depend d where d.objid = t.oid and d.deptype = 'e') \gexec
SQL
    done
)

fupin_service_databases
