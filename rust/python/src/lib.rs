//! `lec7rs._core`: the thin PyO3 binding of `lec7rs-core`. It converts and
//! checks arguments, releases the GIL and calls the core; the classes users
//! touch are in the Python package.

mod arrays;
mod augment;
mod averaging;
mod clip;
mod errors;
mod interrupt;
mod lock;
mod many;
mod optim;
mod optimize;
mod plan;
mod random;
mod regularization;
mod runtime;
mod step;
mod trust;

use numpy::PyArrayMethods;
use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // At import, before any thread of ours exists: a fork from then on
    // finds the handler that rebuilds the pool in the child.
    lec7rs_core::parallel::init();
    // rust-numpy's lazily loaded C API and borrow-checker state, now: a
    // child forked while another thread was setting them up on first use
    // would wait for that thread forever.
    let probe = numpy::PyArray1::<f64>::zeros(m.py(), 0, false);
    drop(probe.try_readwrite()?);
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_SPAWN", lec7rs_core::random::MAX_SPAWN)?;
    m.add_function(wrap_pyfunction!(runtime::simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::simd_levels, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::set_simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::env_warnings, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::_panic_in_pool, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::_buffer_cache, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::_clear_buffer_cache, m)?)?;
    m.add_function(wrap_pyfunction!(optim::optimizer_step, m)?)?;
    m.add_function(wrap_pyfunction!(optim::optimizer_check, m)?)?;
    m.add_function(wrap_pyfunction!(optim::optimizer_rule, m)?)?;
    m.add_function(wrap_pyfunction!(optim::slot_shape, m)?)?;
    m.add_function(wrap_pyfunction!(clip::grad_norm, m)?)?;
    m.add_function(wrap_pyfunction!(clip::grads_scale, m)?)?;
    m.add_function(wrap_pyfunction!(clip::grads_clamp, m)?)?;
    m.add_function(wrap_pyfunction!(clip::lookahead_sync, m)?)?;
    m.add_function(wrap_pyfunction!(optimize::minimize, m)?)?;
    m.add_function(wrap_pyfunction!(optimize::lbfgs_two_loop, m)?)?;
    m.add_function(wrap_pyfunction!(optimize::lbfgs_direction, m)?)?;
    m.add_function(wrap_pyfunction!(optimize::cholesky_solve, m)?)?;
    m.add_function(wrap_pyfunction!(trust::minimize_trust, m)?)?;
    m.add_function(wrap_pyfunction!(many::minimize_many, m)?)?;
    m.add_function(wrap_pyfunction!(averaging::average_update, m)?)?;
    m.add_function(wrap_pyfunction!(averaging::average_check, m)?)?;
    m.add_class::<random::PhiloxStream>()?;
    m.add_class::<plan::StepCache>()?;
    m.add_class::<lock::Lock>()?;
    m.add_function(wrap_pyfunction!(random::philox_algorithm, m)?)?;
    m.add_function(wrap_pyfunction!(random::philox_block, m)?)?;
    m.add_function(wrap_pyfunction!(regularization::dropout, m)?)?;
    m.add_function(wrap_pyfunction!(regularization::dropout_backward, m)?)?;
    m.add_function(wrap_pyfunction!(regularization::stochastic_depth, m)?)?;
    m.add_function(wrap_pyfunction!(regularization::fractional_max_pool2d, m)?)?;
    m.add_function(wrap_pyfunction!(
        regularization::fractional_max_pool2d_backward,
        m
    )?)?;
    m.add_function(wrap_pyfunction!(augment::augment_flip, m)?)?;
    m.add_function(wrap_pyfunction!(augment::augment_crop, m)?)?;
    m.add_function(wrap_pyfunction!(augment::augment_resized_crop, m)?)?;
    m.add_function(wrap_pyfunction!(augment::augment_color_jitter, m)?)?;
    Ok(())
}
