#!/bin/sh
# A read-only user for syncd (its password comes from SHOP_DB_PASSWORD).
set -eu
mariadb -uroot -p"$MARIADB_ROOT_PASSWORD" <<SQL
CREATE USER IF NOT EXISTS 'reader'@'%' IDENTIFIED BY '${SHOP_DB_PASSWORD}';
GRANT SELECT ON shop.* TO 'reader'@'%';
SQL
