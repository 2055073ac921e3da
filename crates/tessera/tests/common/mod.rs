//! What several black-box tests share.

pub mod pages;
