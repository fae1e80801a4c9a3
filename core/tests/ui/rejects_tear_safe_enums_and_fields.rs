// `#[tear_safe]` refuses a field whose type a writer's death can leave
// invalid, and every enum.
ply_core::shm_safe! {
    #[tear_safe]
    pub struct Last {
        pub key: char,
        pub count: u32,
    }
}

ply_core::shm_safe! {
    #[tear_safe]
    pub struct Maybe(pub Option<u32>);
}

ply_core::shm_safe! {
    #[tear_safe]
    #[repr(u8)]
    pub enum Reply {
        Idle,
        Done(u32),
    }
}

fn main() {}
