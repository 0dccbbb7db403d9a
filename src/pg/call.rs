//! Calling functions that users registered by signature: projection
//! handlers, reset functions, fold functions.
//!
//! Each `UserFunction` keeps its call information (`FmgrInfo`) in a memory
//! context of its own, deleted with it. The function manager caches
//! per-call-site state under `fn_mcxt` (a SQL function's parsed plans, about
//! 32 kB): with `TopMemoryContext` there, every catch-up batch and every
//! reload of a cache leaked that much for the life of the backend.
//!
//! Calls go through [`crate::pg::roles::sandboxed`] at the call sites, which
//! decide the role and search_path.

use pgrx::pg_sys::{self, Datum, Oid};

pub(crate) struct UserFunction {
    cxt: pg_sys::MemoryContext,
    finfo: *mut pg_sys::FmgrInfo,
    /// The function's owner (`pg_proc.proowner`).
    pub(crate) owner: Oid,
    /// The type of its first argument (InvalidOid when it takes none).
    pub(crate) first_arg: Oid,
}

impl UserFunction {
    /// Looks the function up. Errors (a dropped function) are PostgreSQL's own.
    pub(crate) fn new(proc: Oid) -> UserFunction {
        // SAFETY: the context is a child of TopMemoryContext, so it outlives
        // any transaction; it is deleted by Drop and nothing else. The
        // FmgrInfo is allocated zeroed inside it and filled by fmgr.
        unsafe {
            let cxt = crate::pg::xact::new_context(pg_sys::TopMemoryContext, c"es user function");
            // Built first, so that Drop frees the context if fmgr fails.
            let mut f = UserFunction {
                cxt,
                finfo: std::ptr::null_mut(),
                owner: Oid::INVALID,
                first_arg: Oid::INVALID,
            };
            f.finfo = pg_sys::MemoryContextAllocZero(cxt, std::mem::size_of::<pg_sys::FmgrInfo>())
                as *mut pg_sys::FmgrInfo;
            pg_sys::fmgr_info_cxt(proc, f.finfo, cxt);
            (f.owner, f.first_arg) = owner_and_first_arg(proc);
            f
        }
    }

    /// Calls the function with non-null `args`; `None` for a NULL result.
    /// Errors come back as Rust panics, so callers may catch them (an
    /// async projection's batch does) and values on the way out are dropped.
    /// pgrx maps a SQLSTATE it does not know (a user's own, `P0042`) to XX000.
    pub(crate) fn call(&self, args: &[Datum]) -> Option<Datum> {
        // SAFETY: see `call_frame`; pg_guard_ffi_boundary turns a PostgreSQL
        // error inside the call into a Rust panic.
        unsafe { self.call_frame(args, |f, fc| pg_sys::ffi::pg_guard_ffi_boundary(|| f(fc))) }
    }

    /// Like [`call`](Self::call), but a PostgreSQL error raised inside
    /// propagates as PostgreSQL's own, with its SQLSTATE unchanged (a fold
    /// function's errors reach the caller of es.load or es.fold as raised).
    ///
    /// # Safety
    /// Nothing between here and the caller's error handler may need to run
    /// on the way out: Rust frames are skipped, not unwound. The sandbox
    /// this runs in is undone by the (sub)transaction abort, which restores
    /// the role, the security context and every GUC nest level.
    pub(crate) unsafe fn call_propagating(&self, args: &[Datum]) -> Option<Datum> {
        self.call_frame(args, |f, fc| f(fc))
    }

    /// # Safety
    /// The call frame is sized for `args` and freed after the call; `finfo`
    /// is valid while `self` lives; the function's address was set by
    /// fmgr_info_cxt.
    unsafe fn call_frame(
        &self,
        args: &[Datum],
        invoke: impl FnOnce(
            unsafe extern "C-unwind" fn(pg_sys::FunctionCallInfo) -> Datum,
            pg_sys::FunctionCallInfo,
        ) -> Datum,
    ) -> Option<Datum> {
        let n = args.len();
        let size = std::mem::size_of::<pg_sys::FunctionCallInfoBaseData>()
            + n * std::mem::size_of::<pg_sys::NullableDatum>();
        let fc = pg_sys::palloc0(size) as pg_sys::FunctionCallInfo;
        (*fc).flinfo = self.finfo;
        (*fc).nargs = n as i16;
        (*fc).fncollation = Oid::INVALID;
        let slots = (*fc).args.as_mut_slice(n);
        for (slot, a) in slots.iter_mut().zip(args) {
            *slot = pg_sys::NullableDatum {
                value: *a,
                isnull: false,
            };
        }
        let f = (*self.finfo).fn_addr.expect("function has an address");
        let result = invoke(f, fc);
        let isnull = (*fc).isnull;
        pg_sys::pfree(fc.cast());
        (!isnull).then_some(result)
    }
}

impl Drop for UserFunction {
    fn drop(&mut self) {
        // SAFETY: the context was created by `new` and is deleted only here.
        unsafe { pg_sys::MemoryContextDelete(self.cxt) };
    }
}

/// The owner of function `proc` and the type of its first argument
/// (InvalidOid for either when there is none).
fn owner_and_first_arg(proc: Oid) -> (Oid, Oid) {
    // SAFETY: a syscache lookup whose tuple is released before returning;
    // GETSTRUCT of a pg_proc tuple is a Form_pg_proc, whose proargtypes holds
    // pronargs oids (the fixed part of the tuple, so readable in place).
    unsafe {
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::PROCOID as i32,
            Datum::from(proc),
        );
        if tuple.is_null() {
            return (Oid::INVALID, Oid::INVALID);
        }
        let form = pg_sys::GETSTRUCT(tuple) as pg_sys::Form_pg_proc;
        let owner = (*form).proowner;
        let first = if (*form).pronargs > 0 {
            (*form).proargtypes.values.as_slice(1)[0]
        } else {
            Oid::INVALID
        };
        pg_sys::ReleaseSysCache(tuple);
        (owner, first)
    }
}
