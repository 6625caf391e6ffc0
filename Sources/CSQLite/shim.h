#include <sqlite3.h>

/// SQLITE_TRANSIENT is a macro Swift cannot import: tell SQLite to copy bound values.
static inline int cw_sqlite3_bind_text_copy(sqlite3_stmt *stmt, int index, const char *text, int length) {
    return sqlite3_bind_text(stmt, index, text, length, SQLITE_TRANSIENT);
}
static inline int cw_sqlite3_bind_blob_copy(sqlite3_stmt *stmt, int index, const void *data, int length) {
    return sqlite3_bind_blob(stmt, index, data, length, SQLITE_TRANSIENT);
}
