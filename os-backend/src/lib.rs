//! ply-os
