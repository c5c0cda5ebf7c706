//! Full-screen frame time at 200×60 on ratatui's TestBackend with a busy session: both providers,
//! a thousand attempts of mixed outcomes, rate-limit and concurrency readings, an error mix.
//!
//! `cargo bench --bench render`. Target (issue 7): ≤ 1 ms per frame. The frame is drawn the way
//! the live loop draws it (`Terminal::draw`: the panes, then ratatui's diff against the previous
//! frame); instructions per frame, repeatable where times are not: `benches/render_frames.rs` (an example).

// The binary draws with mimalloc (src/main.rs); so does the measurement.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/busy_session.rs"]
mod busy_session;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use busy_session::{WIDE_PROVIDERS, WIDE_TARGETS, busy_app, wide_app};
use omniscope::app::View;

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
    // The same panes without the terminal's bookkeeping: drawn into the frame's (reset) buffer,
    // with no diff against the previous frame. Not issue 7's figure (the live loop's
    // `Terminal::draw` diffs on every frame, whatever the backend); it shows how a frame splits
    // between the panes and ratatui's diff.
    c.bench_function("render/panes only 200x60, no terminal diff", |b| {
        b.iter(|| {
            terminal.current_buffer_mut().reset();
            let mut frame = terminal.get_frame();
            omniscope::ui::render(&mut frame, black_box(&app));
        });
    });
}

/// Issue 16's budget: every view of a session with 8 providers × 50 targets, ≤ 2 ms a frame.
fn bench_views(c: &mut Criterion) {
    let mut app = wide_app();
    assert_eq!(app.stats.providers.len(), WIDE_PROVIDERS);
    assert!(app.stats.providers[0].by_host.len() >= WIDE_TARGETS);
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    for view in View::ORDER {
        app.view = view;
        c.bench_function(
            &format!("render/{} 200x60, 8 providers x 50 targets", view.name()),
            |b| {
                b.iter(|| {
                    terminal
                        .draw(|frame| omniscope::ui::render(frame, black_box(&app)))
                        .unwrap();
                });
            },
        );
    }
}

criterion_group!(benches, bench_render, bench_views);
criterion_main!(benches);
