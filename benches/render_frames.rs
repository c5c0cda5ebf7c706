//! Draws the render benchmark's busy 200×60 session N times (default 200) on TestBackend, the way
//! `cargo bench --bench render` does: a fixed amount of work for callgrind, which counts
//! instructions repeatably where wall-clock timings are noisy.
//!
//! Instructions per frame = (Ir at N = 201 − Ir at N = 1) / 200, the first frame (which paints every
//! cell into an empty backend) and the set-up cancelling out:
//! `valgrind --tool=callgrind target/release/examples/render_frames 201` and `… 1`.

// The binary draws with mimalloc (src/main.rs); so does the measurement.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// The wide session is the render bench's; this example draws the busy one only.
#[allow(dead_code)]
#[path = "support/busy_session.rs"]
mod busy_session;

use std::hint::black_box;

use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn main() -> anyhow::Result<()> {
    let frames: u32 = std::env::args().nth(1).map_or(Ok(200), |arg| arg.parse())?;
    let app = busy_session::busy_app();
    let mut terminal = Terminal::new(TestBackend::new(200, 60))?;
    for _ in 0..frames {
        terminal.draw(|frame| omniscope::ui::render(frame, black_box(&app)))?;
    }
    Ok(())
}
