//! Flame graphs: folded stacks (`comm;outer;...;inner count`, as bcc's tools print them with `-f`)
//! drawn as an interactive SVG by the `inferno` crate, Brendan Gregg's flamegraph.pl ported to Rust.
//! This module only chooses inferno's options; Python turns maps and tools' output into the lines.

use std::str::FromStr;

use inferno::flamegraph::{self, color::BackgroundColor, Direction, Options, Palette};

use crate::error::{Error, Result};

/// The palettes inferno knows, by the names flamegraph.pl's `--colors` takes (its `Palette::from_str`).
/// "java" colours frames annotated `_[k]` (kernel, as bcc's `profile -a` marks them) apart from the
/// rest; "io" and "wakeup" are the blues of off-CPU and wakeup graphs.
pub const PALETTES: &[&str] = &[
    "hot", "mem", "io", "wakeup", "java", "js", "perl", "python", "rust", "red", "green", "blue", "aqua", "yellow",
    "purple", "orange",
];

/// How to draw one flame graph. `Default` gives flamegraph.pl's look with the "hot" palette.
#[derive(Debug, Clone, PartialEq)]
pub struct FlameOptions {
    pub title: String,
    pub subtitle: Option<String>,
    /// One of `PALETTES`.
    pub palette: String,
    /// What a count is ("samples", "us"), shown in each frame's tooltip.
    pub count_name: String,
    /// Pixels; None lets the SVG fill its container.
    pub width: Option<usize>,
    /// An icicle graph: roots at the top, stacks growing down.
    pub inverted: bool,
    /// Frames narrower than this many pixels are left out (flamegraph.pl's default is 0.1).
    pub min_width: f64,
    /// Text kept in the SVG's `<notes>` element (what made it).
    pub notes: String,
}

impl Default for FlameOptions {
    fn default() -> Self {
        FlameOptions {
            title: "Flame Graph".into(),
            subtitle: None,
            palette: "hot".into(),
            count_name: "samples".into(),
            width: None,
            inverted: false,
            min_width: 0.1,
            notes: String::new(),
        }
    }
}

/// The palette named `name`, or an InvalidArgument listing the names there are.
fn palette(name: &str) -> Result<Palette> {
    Palette::from_str(name)
        .map_err(|_| Error::InvalidArgument(format!("unknown palette {name:?} (known: {})", PALETTES.join(", "))))
}

/// The SVG of the folded stack `lines` (blank lines and `# ` comments are skipped, as inferno does).
/// Stacks with no counts at all give inferno's own "no valid input" picture, not an error: a trace
/// that saw nothing still leaves a file saying so.
pub fn svg<'a>(lines: impl IntoIterator<Item = &'a str>, opts: &FlameOptions) -> Result<Vec<u8>> {
    if !opts.min_width.is_finite() || opts.min_width < 0.0 {
        return Err(Error::InvalidArgument(format!("min_width must be 0 or more, not {}", opts.min_width)));
    }
    if opts.width == Some(0) {
        return Err(Error::InvalidArgument("width must be positive".into()));
    }
    let mut options = Options::default();
    options.colors = palette(&opts.palette)?;
    // colours follow the function's name, not a random draw: the same stacks give the same picture
    options.hash = true;
    options.title = opts.title.clone();
    options.subtitle = opts.subtitle.clone();
    options.count_name = opts.count_name.clone();
    options.image_width = opts.width;
    options.min_width = opts.min_width;
    options.notes = opts.notes.clone();
    if opts.inverted {
        options.direction = Direction::Inverted;
        // flamegraph.pl draws icicles on the same background as flames (inferno would pick its own)
        options.bgcolors = Some(BackgroundColor::default());
    }
    let mut out = Vec::new();
    match flamegraph::from_lines(&mut options, lines, &mut out) {
        Ok(()) => Ok(out),
        // inferno has written its "no valid input" SVG before saying so
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData && !out.is_empty() => Ok(out),
        Err(e) => Err(Error::io("drawing the flame graph", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(lines: &[&str], opts: &FlameOptions) -> String {
        String::from_utf8(svg(lines.iter().copied(), opts).unwrap()).unwrap()
    }

    #[test]
    fn frames_are_drawn_with_their_counts_and_the_title() {
        let opts = FlameOptions { title: "CPU".into(), count_name: "us".into(), ..Default::default() };
        let text = draw(&["app;main;spin_a 200", "app;main;spin_b 100"], &opts);
        assert!(text.starts_with("<?xml") && text.contains("<svg"), "{text}");
        assert!(text.contains("spin_a (200 us, 66.67%)"), "{text}");
        assert!(text.contains("spin_b (100 us, 33.33%)"), "{text}");
        assert!(text.contains(">CPU<"), "{text}");
    }

    #[test]
    fn kernel_annotations_colour_frames_apart_and_are_not_shown() {
        let opts = FlameOptions { palette: "java".into(), ..Default::default() };
        let text = draw(&["app;main;read;ksys_read_[k] 5"], &opts);
        // the label drops the annotation; the java palette paints kernel frames orange
        assert!(text.contains("<title>ksys_read (5 samples"), "{text}");
        assert!(!text.contains("ksys_read_[k]"), "{text}");
    }

    #[test]
    fn the_same_stacks_give_the_same_picture() {
        let opts = FlameOptions::default();
        assert_eq!(draw(&["a;b 3", "a;c 1"], &opts), draw(&["a;c 1", "a;b 3"], &opts));
    }

    #[test]
    fn nothing_sampled_still_gives_a_picture() {
        let text = draw(&[], &FlameOptions::default());
        assert!(text.contains("No valid input"), "{text}");
    }

    #[test]
    fn every_palette_named_is_known_and_others_are_refused() {
        for name in PALETTES {
            palette(name).unwrap();
        }
        let err = svg(["a 1"], &FlameOptions { palette: "mauve".into(), ..Default::default() }).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(ref m) if m.contains("mauve") && m.contains("wakeup")));
        let err = svg(["a 1"], &FlameOptions { min_width: -1.0, ..Default::default() }).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)));
    }
}
