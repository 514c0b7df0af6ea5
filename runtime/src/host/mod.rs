//! host: the modules this runtime provides to jobs, and the catalog that says which.
pub mod catalog;
