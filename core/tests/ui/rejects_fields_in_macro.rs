// `shm_safe!` checks each field: these definitions do not compile.
ply_core::shm_safe! {
    pub struct Job {
        pub id: u32,
        pub name: String,
    }
}

ply_core::shm_safe! {
    pub struct Cursor(pub usize, pub *const u8);
}

ply_core::shm_safe! {
    pub enum Reply {
        Empty,
        Text { text: &'static str },
        Items(Vec<u32>),
    }
}

fn main() {}
