"""Sources: the MySQL/MariaDB side (connections, schema, snapshot, binlog)."""
