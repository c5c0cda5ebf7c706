//! Full-screen frame time at 200×60 on ratatui's TestBackend with a busy session: both providers,
//! a thousand attempts of mixed outcomes, rate-limit and concurrency readings, an error mix.
//!
//! `cargo bench --bench render`. Target (issue 7): ≤ 1 ms per frame.

// The binary draws with mimalloc (src/main.rs); so does the measurement.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/busy_session.rs"]
mod busy_session;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use busy_session::busy_app;

fn bench_render(c: &mut Criterion) {
    let app = busy_app();
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    c.bench_function("render/full frame 200x60", |b| {
        b.iter(|| {
            terminal
                .draw(|frame| omniscope::ui::render(frame, black_box(&app)))
                .unwrap();
        });
    });
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
