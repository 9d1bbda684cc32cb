//! The store on its own, against both backends from one test body: SQLite always, PostgreSQL
//! whenever `LATCHKEY_TEST_POSTGRES_URL` is set (each test creates its own database and drops
//! it afterwards). The server's suite covers the store through the API; these pin the
//! contracts the engine and the server rely on directly.

mod changes;
mod credits;
mod db;
mod portal;
mod usage;
mod webhooks;
mod writes;
