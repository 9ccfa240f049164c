/*
 * The limits sql.query shares between its PostgreSQL half (sql.c) and its
 * MySQL/MariaDB half (sql_mysql.c).
 */
#ifndef SQL_LIMITS_H
#define SQL_LIMITS_H

/* Connections per worker for one (url, owner); more jobs wait for one. */
#define SQL_POOL_MAX 8
/* Largest result a job may ask for (max_size), and the default. */
#define SQL_RESULT_MAX (16u << 20)
#define SQL_RESULT_DEFAULT (1u << 20)

#endif
