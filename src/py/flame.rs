//! Flame graphs (src/flame.rs) for Python: folded lines in, SVG bytes out, drawn without the GIL.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::flame::{self, FlameOptions};

/// The SVG of the folded stack `lines` ("frame;frame;... count"), drawn by inferno.
#[pyfunction]
#[pyo3(signature = (lines, *, title="Flame Graph", subtitle=None, palette="hot", count_name="samples",
    width=None, inverted=false, min_width=0.1, notes=""))]
#[allow(clippy::too_many_arguments)]
fn flamegraph_svg<'py>(
    py: Python<'py>,
    lines: Vec<String>,
    title: &str,
    subtitle: Option<String>,
    palette: &str,
    count_name: &str,
    width: Option<usize>,
    inverted: bool,
    min_width: f64,
    notes: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let opts = FlameOptions {
        title: title.into(),
        subtitle,
        palette: palette.into(),
        count_name: count_name.into(),
        width,
        inverted,
        min_width,
        notes: notes.into(),
    };
    let svg = py.detach(|| flame::svg(lines.iter().map(String::as_str), &opts))?;
    Ok(PyBytes::new(py, &svg))
}

/// The palette names `flamegraph_svg` takes.
#[pyfunction]
fn flamegraph_palettes() -> Vec<&'static str> {
    flame::PALETTES.to_vec()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(flamegraph_svg, m)?)?;
    m.add_function(wrap_pyfunction!(flamegraph_palettes, m)?)?;
    Ok(())
}
