//! argv -> Options (pure).
