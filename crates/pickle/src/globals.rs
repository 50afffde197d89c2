//! Classification of GLOBAL references `(module, name)` for scanners and for
//! the `weights_only` compatibility check.
//!
//! [`classify`] returns one of four [`GlobalClass`]es, in this order of
//! precedence:
//!
//! 1. The names are first mapped from Python 2 to Python 3 like
//!    `pickle.Unpickler.find_class` with `fix_imports` (and
//!    `torch.load(weights_only=True)`) do: [`NAME_MAPPING`], then
//!    [`IMPORT_MAPPING`] (`__builtin__` → `builtins`, `copy_reg` → `copyreg`,
//!    `exceptions.X` → `builtins.X`).
//! 2. [`GlobalClass::Dangerous`]: an empty module or name; a [`DANGEROUS`]
//!    rule (a whole module and its submodules, or some names of a module;
//!    a dotted name matches on its first segment); a dotted name with a dunder
//!    segment (`gadget.__init__.__globals__`, an attribute chain).
//! 3. [`GlobalClass::Allowed`]: exactly in [`ALLOWED`], the default allowlist
//!    of `torch.load(weights_only=True)` (torch 2.15, 144 entries).
//! 4. [`GlobalClass::BenignNotAllowlisted`]: in [`BENIGN`], classes and
//!    functions that are harmless to construct but that `weights_only=True`
//!    rejects until the user calls `torch.serialization.add_safe_globals`.
//! 5. [`GlobalClass::Unknown`]: everything else (a scanner reports it as
//!    suspicious).
//!
//! The tables are data with a source comment on each group. Sources:
//! `docs/formats/pickle.md` lists them; in short: torch
//! `_weights_only_unpickler.py` (allowlist), picklescan `_unsafe_globals`,
//! modelscan `DEFAULT_SETTINGS["unsafe_globals"]`, fickling `UNSAFE_IMPORTS`,
//! `UnsafeImportsML`, `ScannerDeactivation` and `ML_ALLOWLIST`, CPython
//! `Lib/_compat_pickle.py`.

use std::borrow::Cow;

/// The verdict for one global.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GlobalClass {
    /// Loads under `torch.load(weights_only=True)` by default.
    Allowed,
    /// Harmless, but needs `torch.serialization.add_safe_globals([...])`.
    BenignNotAllowlisted,
    /// Not classified: treat as suspicious.
    Unknown,
    /// Executes code, touches the system, or loads more pickles.
    Dangerous,
}

/// A classification with the rule that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The class.
    pub class: GlobalClass,
    /// Where the matching rule comes from (a table source), or why no rule
    /// matched.
    pub source: &'static str,
}

/// Which names of a module a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// The module, every name in it, and its submodules.
    All,
    /// Only these names of exactly this module.
    Only(&'static [&'static str]),
}

/// One table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Module (Python 3 spelling).
    pub module: &'static str,
    /// Names covered.
    pub names: Names,
    /// Where the entry comes from.
    pub source: &'static str,
}

const fn all(module: &'static str, source: &'static str) -> Rule {
    Rule {
        module,
        names: Names::All,
        source,
    }
}

const fn only(module: &'static str, names: &'static [&'static str], source: &'static str) -> Rule {
    Rule {
        module,
        names: Names::Only(names),
        source,
    }
}

const PICKLESCAN: &str = "picklescan src/picklescan/scanner.py _unsafe_globals";
const MODELSCAN: &str = "modelscan settings.py DEFAULT_SETTINGS[\"unsafe_globals\"]";
const FICKLING: &str = "fickling fickle.py UNSAFE_IMPORTS";
const FICKLING_ML: &str = "fickling analysis.py UnsafeImportsML";
const FICKLING_BUILTINS: &str = "fickling fickle.py blocked builtins";
const FICKLING_SCANNERS: &str = "fickling analysis.py ScannerDeactivation";
const PEERS_SINKS: &str =
    "docs/formats/pytorch.md, 'Scanner bypass classes' 3-4 (execution sinks, nested loads)";
const TORCH_NEVER: &str =
    "torch _weights_only_unpickler.py: sys, os, posix, nt can never be allowlisted";

/// Globals that execute code, reach the system or network, or load nested
/// pickles.
pub const DANGEROUS: &[Rule] = &[
    // torch: modules that can never be allowlisted.
    all("os", TORCH_NEVER),
    all("posix", TORCH_NEVER),
    all("nt", TORCH_NEVER),
    all("sys", TORCH_NEVER),
    // picklescan _unsafe_globals (HEAD 2026-07-01); `*` entries are whole modules.
    only(
        "builtins",
        &[
            "eval",
            "compile",
            "getattr",
            "apply",
            "exec",
            "open",
            "breakpoint",
            "__import__",
            "execfile",
        ],
        PICKLESCAN,
    ),
    all("cloudpickle", PICKLESCAN),
    all("types", PICKLESCAN),
    all("aiohttp", PICKLESCAN),
    all("asyncio", PICKLESCAN),
    all("bdb", PICKLESCAN),
    all("commands", PICKLESCAN),
    all("ctypes", PICKLESCAN),
    only("functools", &["partial"], PICKLESCAN),
    all("httplib", PICKLESCAN),
    all("logging", PICKLESCAN),
    all("_io", PICKLESCAN),
    all("numpy.f2py", PICKLESCAN),
    all("numpy.testing._private.utils", PICKLESCAN),
    all("_operator", PICKLESCAN),
    only(
        "operator",
        &["attrgetter", "itemgetter", "methodcaller"],
        PICKLESCAN,
    ),
    all("requests.api", PICKLESCAN),
    all("runpy", PICKLESCAN),
    all("shutil", PICKLESCAN),
    all("socket", PICKLESCAN),
    all("ssl", PICKLESCAN),
    all("subprocess", PICKLESCAN),
    all("code", PICKLESCAN),
    all("cProfile", PICKLESCAN),
    all("distutils", PICKLESCAN),
    all("doctest", PICKLESCAN),
    all("ensurepip", PICKLESCAN),
    all("idlelib", PICKLESCAN),
    all("imaplib", PICKLESCAN),
    all("lib2to3", PICKLESCAN),
    all("pdb", PICKLESCAN),
    all("pickle", PICKLESCAN),
    all("_pickle", PICKLESCAN),
    all("pip", PICKLESCAN),
    all("pkgutil", PICKLESCAN),
    all("pty", PICKLESCAN),
    all("profile", PICKLESCAN),
    all("pydoc", PICKLESCAN),
    all("test", PICKLESCAN),
    all("timeit", PICKLESCAN),
    all("torch._dynamo", PICKLESCAN),
    all("torch._inductor", PICKLESCAN),
    all("torch.fx.experimental.symbolic_shapes", PICKLESCAN),
    only(
        "torch.jit.unsupported_tensor_ops",
        &["execWrapper"],
        PICKLESCAN,
    ),
    only("torch.serialization", &["load"], PICKLESCAN),
    all("torch.utils._config_module", PICKLESCAN),
    all("torch.utils.bottleneck", PICKLESCAN),
    only("torch.utils.collect_env", &["run"], PICKLESCAN),
    all("torch.utils.data.datapipes.utils.decoder", PICKLESCAN),
    all("trace", PICKLESCAN),
    all("urllib", PICKLESCAN),
    all("uuid", PICKLESCAN),
    all("venv", PICKLESCAN),
    all("webbrowser", PICKLESCAN),
    all("_osx_support", PICKLESCAN),
    all("_aix_support", PICKLESCAN),
    all("_pyrepl", PICKLESCAN),
    // modelscan CRITICAL/HIGH tiers not already above.
    all("aiohttp.client", MODELSCAN),
    // fickling UNSAFE_IMPORTS (module-level deny) not already above.
    all("multiprocessing", FICKLING),
    all("_posixsubprocess", FICKLING),
    all("codeop", FICKLING),
    all("marshal", FICKLING),
    all("_interpreters", FICKLING),
    all("_xxsubinterpreters", FICKLING),
    all("importlib", FICKLING),
    all("_frozen_importlib", FICKLING),
    all("_frozen_importlib_external", FICKLING),
    all("_imp", FICKLING),
    all("imp", FICKLING),
    all("zipimport", FICKLING),
    all("gc", FICKLING),
    all("site", FICKLING),
    all("unittest", FICKLING),
    all("inspect", FICKLING),
    all("http", FICKLING),
    all("requests", FICKLING),
    all("smtplib", FICKLING),
    all("ftplib", FICKLING),
    all("poplib", FICKLING),
    all("telnetlib", FICKLING),
    all("nntplib", FICKLING),
    all("_ctypes", FICKLING),
    all("dill", FICKLING),
    all("joblib", FICKLING),
    all("tempfile", FICKLING),
    all("filecmp", FICKLING),
    all("pexpect", FICKLING),
    all("pipes", FICKLING),
    all("socketserver", FICKLING),
    all("xmlrpc", FICKLING),
    all("signal", FICKLING),
    all("threading", FICKLING),
    all("_thread", FICKLING),
    all("atexit", FICKLING),
    all("sqlite3", FICKLING),
    all("fileinput", FICKLING),
    all("glob", FICKLING),
    all("platform", FICKLING),
    all("linecache", FICKLING),
    all("difflib", FICKLING),
    all("compileall", FICKLING),
    all("py_compile", FICKLING),
    all("mmap", FICKLING),
    all("select", FICKLING),
    all("selectors", FICKLING),
    all("syslog", FICKLING),
    all("tarfile", FICKLING),
    all("zipfile", FICKLING),
    all("shelve", FICKLING),
    // fickling blocked builtins beyond picklescan's.
    only(
        "builtins",
        &[
            "setattr",
            "delattr",
            "hasattr",
            "globals",
            "locals",
            "vars",
            "input",
            "memoryview",
        ],
        FICKLING_BUILTINS,
    ),
    // fickling UnsafeImportsML.
    all("torch.hub", FICKLING_ML),
    all("torch.jit", FICKLING_ML),
    all("numpy.distutils", FICKLING_ML),
    only("torch", &["load", "compile"], FICKLING_ML),
    only("torch.storage", &["_load_from_bytes"], FICKLING_ML),
    all("torch.distributed.elastic.rendezvous.api", FICKLING_ML),
    only("io", &["FileIO", "open", "open_code"], FICKLING_ML),
    // fickling ScannerDeactivation: importing a scanner is overtly malicious.
    all("fickling", FICKLING_SCANNERS),
    all("picklescan", FICKLING_SCANNERS),
    all("modelscan", FICKLING_SCANNERS),
    all("model_unpickler", FICKLING_SCANNERS),
    all("saferpickle", FICKLING_SCANNERS),
    all("modelaudit", FICKLING_SCANNERS),
    // docs/formats/pytorch.md, 'Scanner bypass classes': other execution sinks and nested loaders.
    only("mailcap", &["findmatch"], PEERS_SINKS),
    only("numpy", &["load"], PEERS_SINKS),
    only("pandas", &["read_pickle"], PEERS_SINKS),
    all("mlflow.projects", PEERS_SINKS),
];

const TORCH_FIXED: &str = "torch 2.15 _weights_only_unpickler._get_allowed_globals fixed entries";
const TORCH_REBUILD: &str = "torch 2.15 _weights_only_unpickler._tensor_rebuild_functions";
const TORCH_DTYPES: &str = "torch 2.15 _get_allowed_globals: dtypes";
const TORCH_QSCHEMES: &str = "torch 2.15 _get_allowed_globals: qschemes";
const TORCH_TENSORS: &str = "torch 2.15 _get_allowed_globals: legacy tensor classes";
const TORCH_STORAGES: &str = "torch 2.15 _get_allowed_globals: storage classes";

/// The default allowlist of `torch.load(weights_only=True)` in torch 2.15
/// (docs/formats/pytorch.md, 'weights_only: allowed globals'; 144 entries).
pub const ALLOWED: &[Rule] = &[
    only("collections", &["OrderedDict", "Counter"], TORCH_FIXED),
    only("torch.nn.parameter", &["Parameter"], TORCH_FIXED),
    only("torch.serialization", &["_get_layout"], TORCH_FIXED),
    only("torch", &["Size", "Tensor", "device"], TORCH_FIXED),
    only("_codecs", &["encode"], TORCH_FIXED),
    only("builtins", &["bytearray", "set", "complex"], TORCH_FIXED),
    only(
        "torch._utils",
        &[
            "_rebuild_parameter",
            "_rebuild_parameter_with_state",
            "_rebuild_qtensor",
            "_rebuild_tensor",
            "_rebuild_tensor_v2",
            "_rebuild_tensor_v3",
            "_rebuild_sparse_tensor",
            "_rebuild_meta_tensor_no_storage",
            "_rebuild_wrapper_subclass",
            "_rebuild_device_tensor_from_numpy",
            "_rebuild_device_tensor_from_cpu_tensor",
        ],
        TORCH_REBUILD,
    ),
    only("torch._tensor", &["_rebuild_from_type_v2"], TORCH_REBUILD),
    only(
        "torch",
        &[
            "float64",
            "float32",
            "float16",
            "bfloat16",
            "int64",
            "int32",
            "int16",
            "int8",
            "uint8",
            "bool",
            "complex64",
            "complex128",
            "complex32",
            "bcomplex32",
            "qint8",
            "qint32",
            "quint8",
            "quint4x2",
            "quint2x4",
            "float8_e4m3fn",
            "float8_e5m2",
            "float8_e4m3fnuz",
            "float8_e5m2fnuz",
            "float8_e8m0fnu",
            "float4_e2m1fn_x2",
            "bits8",
            "bits16",
            "bits1x8",
            "bits2x4",
            "bits4x2",
            "uint16",
            "uint32",
            "uint64",
            "uint1",
            "uint2",
            "uint3",
            "uint4",
            "uint5",
            "uint6",
            "uint7",
            "int1",
            "int2",
            "int3",
            "int4",
            "int5",
            "int6",
            "int7",
        ],
        TORCH_DTYPES,
    ),
    only(
        "torch",
        &[
            "per_tensor_affine",
            "per_tensor_symmetric",
            "per_channel_affine",
            "per_channel_symmetric",
            "per_channel_affine_float_qparams",
        ],
        TORCH_QSCHEMES,
    ),
    only(
        "torch",
        &[
            "DoubleTensor",
            "FloatTensor",
            "HalfTensor",
            "BFloat16Tensor",
            "LongTensor",
            "IntTensor",
            "ShortTensor",
            "CharTensor",
            "ByteTensor",
            "BoolTensor",
        ],
        TORCH_TENSORS,
    ),
    only(
        "torch.cuda",
        &[
            "DoubleTensor",
            "FloatTensor",
            "HalfTensor",
            "BFloat16Tensor",
            "LongTensor",
            "IntTensor",
            "ShortTensor",
            "CharTensor",
            "ByteTensor",
            "BoolTensor",
        ],
        TORCH_TENSORS,
    ),
    only(
        "torch.sparse",
        &[
            "BFloat16Tensor",
            "ByteTensor",
            "CharTensor",
            "DoubleTensor",
            "FloatTensor",
            "HalfTensor",
            "IntTensor",
            "LongTensor",
            "ShortTensor",
        ],
        TORCH_TENSORS,
    ),
    only(
        "torch.cuda.sparse",
        &[
            "BFloat16Tensor",
            "ByteTensor",
            "CharTensor",
            "DoubleTensor",
            "FloatTensor",
            "HalfTensor",
            "IntTensor",
            "LongTensor",
            "ShortTensor",
        ],
        TORCH_TENSORS,
    ),
    only(
        "torch",
        &[
            "DoubleStorage",
            "FloatStorage",
            "HalfStorage",
            "BFloat16Storage",
            "LongStorage",
            "IntStorage",
            "ShortStorage",
            "CharStorage",
            "ByteStorage",
            "BoolStorage",
            "ComplexFloatStorage",
            "ComplexDoubleStorage",
            "QInt8Storage",
            "QUInt8Storage",
            "QInt32Storage",
            "QUInt4x2Storage",
            "QUInt2x4Storage",
        ],
        TORCH_STORAGES,
    ),
    only(
        "torch.cuda",
        &[
            "DoubleStorage",
            "FloatStorage",
            "HalfStorage",
            "BFloat16Storage",
            "LongStorage",
            "IntStorage",
            "ShortStorage",
            "CharStorage",
            "ByteStorage",
            "BoolStorage",
            "ComplexFloatStorage",
            "ComplexDoubleStorage",
        ],
        TORCH_STORAGES,
    ),
    only(
        "torch.storage",
        &["TypedStorage", "UntypedStorage"],
        TORCH_STORAGES,
    ),
];

const FICKLING_ALLOW: &str = "fickling ml.py ML_ALLOWLIST";
const FICKLING_SAFE_BUILTINS: &str = "fickling fickle.py SAFE_BUILTINS";
const TORCH_USER_ERRORS: &str =
    "docs/formats/pytorch.md, 'Other objects in checkpoints' (what weights_only users hit)";
const PICKLESCAN_SAFE: &str = "picklescan scanner.py _safe_globals";

/// Harmless globals that `weights_only=True` rejects by default.
pub const BENIGN: &[Rule] = &[
    only("argparse", &["Namespace"], TORCH_USER_ERRORS),
    only(
        "numpy.core.multiarray",
        &["_reconstruct", "scalar"],
        PICKLESCAN_SAFE,
    ),
    only(
        "numpy._core.multiarray",
        &["_reconstruct", "scalar"],
        PICKLESCAN_SAFE,
    ),
    only("numpy", &["ndarray", "dtype"], PICKLESCAN_SAFE),
    all("numpy.dtypes", TORCH_USER_ERRORS),
    only(
        "torch._utils",
        &["_rebuild_nested_tensor"],
        TORCH_USER_ERRORS,
    ),
    only(
        "builtins",
        &[
            "bool",
            "int",
            "float",
            "str",
            "bytes",
            "list",
            "tuple",
            "dict",
            "frozenset",
            "slice",
            "range",
            "len",
            "min",
            "max",
            "zip",
        ],
        FICKLING_SAFE_BUILTINS,
    ),
    only("collections", &["defaultdict", "deque"], FICKLING_ALLOW),
    only(
        "copyreg",
        &["_reconstructor", "__newobj__", "__newobj_ex__"],
        FICKLING_ALLOW,
    ),
    all("torch.nn.modules.linear", FICKLING_ALLOW),
    all("torch.nn.modules.conv", FICKLING_ALLOW),
    all("torch.nn.modules.pooling", FICKLING_ALLOW),
    all("torch.nn.modules.batchnorm", FICKLING_ALLOW),
    all("torch.nn.modules.activation", FICKLING_ALLOW),
    all("torch.nn.modules.upsampling", FICKLING_ALLOW),
    all("torch.nn.modules.loss", FICKLING_ALLOW),
    only(
        "transformers.training_args",
        &["TrainingArguments"],
        FICKLING_ALLOW,
    ),
    all("accelerate", FICKLING_ALLOW),
    all("tokenizers", FICKLING_ALLOW),
    only(
        "sentence_transformers.training_args",
        &["SentenceTransformerTrainingArguments"],
        FICKLING_ALLOW,
    ),
    only(
        "sklearn.preprocessing._label",
        &["LabelEncoder"],
        FICKLING_ALLOW,
    ),
    all("ultralytics.nn.modules", FICKLING_ALLOW),
];

/// CPython `Lib/_compat_pickle.py` `IMPORT_MAPPING` (Python 2 module → 3).
pub const IMPORT_MAPPING: &[(&str, &str)] = &[
    ("__builtin__", "builtins"),
    ("copy_reg", "copyreg"),
    ("Queue", "queue"),
    ("SocketServer", "socketserver"),
    ("ConfigParser", "configparser"),
    ("repr", "reprlib"),
    ("tkFileDialog", "tkinter.filedialog"),
    ("tkSimpleDialog", "tkinter.simpledialog"),
    ("tkColorChooser", "tkinter.colorchooser"),
    ("tkCommonDialog", "tkinter.commondialog"),
    ("Dialog", "tkinter.dialog"),
    ("Tkdnd", "tkinter.dnd"),
    ("tkFont", "tkinter.font"),
    ("tkMessageBox", "tkinter.messagebox"),
    ("ScrolledText", "tkinter.scrolledtext"),
    ("Tkconstants", "tkinter.constants"),
    ("Tix", "tkinter.tix"),
    ("ttk", "tkinter.ttk"),
    ("Tkinter", "tkinter"),
    ("markupbase", "_markupbase"),
    ("_winreg", "winreg"),
    ("thread", "_thread"),
    ("dummy_thread", "_dummy_thread"),
    ("dbhash", "dbm.bsd"),
    ("dumbdbm", "dbm.dumb"),
    ("dbm", "dbm.ndbm"),
    ("gdbm", "dbm.gnu"),
    ("xmlrpclib", "xmlrpc.client"),
    ("SimpleXMLRPCServer", "xmlrpc.server"),
    ("httplib", "http.client"),
    ("htmlentitydefs", "html.entities"),
    ("HTMLParser", "html.parser"),
    ("Cookie", "http.cookies"),
    ("cookielib", "http.cookiejar"),
    ("BaseHTTPServer", "http.server"),
    ("test.test_support", "test.support"),
    ("commands", "subprocess"),
    ("urlparse", "urllib.parse"),
    ("robotparser", "urllib.robotparser"),
    ("urllib2", "urllib.request"),
    ("anydbm", "dbm"),
    ("_abcoll", "collections.abc"),
    ("cPickle", "pickle"),
    ("_elementtree", "xml.etree.ElementTree"),
    ("FileDialog", "tkinter.filedialog"),
    ("SimpleDialog", "tkinter.simpledialog"),
    ("DocXMLRPCServer", "xmlrpc.server"),
    ("SimpleHTTPServer", "http.server"),
    ("CGIHTTPServer", "http.server"),
    ("UserDict", "collections"),
    ("UserList", "collections"),
    ("UserString", "collections"),
    ("whichdb", "dbm"),
    ("StringIO", "io"),
    ("cStringIO", "io"),
];

/// A `(module, name)` pair.
pub type QualName = (&'static str, &'static str);

/// CPython `Lib/_compat_pickle.py` `NAME_MAPPING`, except the `exceptions.X`
/// entries, which all map to `builtins.X` (handled as a rule, plus
/// `exceptions.StandardError` → `builtins.Exception`).
pub const NAME_MAPPING: &[(QualName, QualName)] = &[
    (("__builtin__", "xrange"), ("builtins", "range")),
    (("__builtin__", "reduce"), ("functools", "reduce")),
    (("__builtin__", "intern"), ("sys", "intern")),
    (("__builtin__", "unichr"), ("builtins", "chr")),
    (("__builtin__", "unicode"), ("builtins", "str")),
    (("__builtin__", "long"), ("builtins", "int")),
    (("__builtin__", "basestring"), ("builtins", "str")),
    (("itertools", "izip"), ("builtins", "zip")),
    (("itertools", "imap"), ("builtins", "map")),
    (("itertools", "ifilter"), ("builtins", "filter")),
    (("itertools", "ifilterfalse"), ("itertools", "filterfalse")),
    (("itertools", "izip_longest"), ("itertools", "zip_longest")),
    (
        ("UserDict", "IterableUserDict"),
        ("collections", "UserDict"),
    ),
    (("UserDict", "UserDict"), ("collections", "UserDict")),
    (("UserList", "UserList"), ("collections", "UserList")),
    (("UserString", "UserString"), ("collections", "UserString")),
    (("whichdb", "whichdb"), ("dbm", "whichdb")),
    (("_socket", "fromfd"), ("socket", "fromfd")),
    (
        ("_multiprocessing", "Connection"),
        ("multiprocessing.connection", "Connection"),
    ),
    (
        ("multiprocessing.process", "Process"),
        ("multiprocessing.context", "Process"),
    ),
    (
        ("multiprocessing.forking", "Popen"),
        ("multiprocessing.popen_fork", "Popen"),
    ),
    (
        ("urllib", "ContentTooShortError"),
        ("urllib.error", "ContentTooShortError"),
    ),
    (("urllib", "getproxies"), ("urllib.request", "getproxies")),
    (
        ("urllib", "pathname2url"),
        ("urllib.request", "pathname2url"),
    ),
    (("urllib", "quote_plus"), ("urllib.parse", "quote_plus")),
    (("urllib", "quote"), ("urllib.parse", "quote")),
    (("urllib", "unquote_plus"), ("urllib.parse", "unquote_plus")),
    (("urllib", "unquote"), ("urllib.parse", "unquote")),
    (
        ("urllib", "url2pathname"),
        ("urllib.request", "url2pathname"),
    ),
    (("urllib", "urlcleanup"), ("urllib.request", "urlcleanup")),
    (("urllib", "urlencode"), ("urllib.parse", "urlencode")),
    (("urllib", "urlopen"), ("urllib.request", "urlopen")),
    (("urllib", "urlretrieve"), ("urllib.request", "urlretrieve")),
    (("urllib2", "HTTPError"), ("urllib.error", "HTTPError")),
    (("urllib2", "URLError"), ("urllib.error", "URLError")),
    (("exceptions", "StandardError"), ("builtins", "Exception")),
    (
        ("multiprocessing", "AuthenticationError"),
        ("multiprocessing.context", "AuthenticationError"),
    ),
    (
        ("multiprocessing", "BufferTooShort"),
        ("multiprocessing.context", "BufferTooShort"),
    ),
    (
        ("multiprocessing", "ProcessError"),
        ("multiprocessing.context", "ProcessError"),
    ),
    (
        ("multiprocessing", "TimeoutError"),
        ("multiprocessing.context", "TimeoutError"),
    ),
    (("socket", "_socketobject"), ("socket", "SocketType")),
];

/// Map a Python 2 global to its Python 3 spelling, as `find_class` with
/// `fix_imports=True` does. Python 3 names come back unchanged.
pub fn python3_name<'a>(module: &'a str, name: &'a str) -> (Cow<'a, str>, Cow<'a, str>) {
    if let Some(&(_, (m, n))) = NAME_MAPPING
        .iter()
        .find(|((m, n), _)| *m == module && *n == name)
    {
        return (Cow::Borrowed(m), Cow::Borrowed(n));
    }
    if module == "exceptions" {
        return (Cow::Borrowed("builtins"), Cow::Borrowed(name));
    }
    if let Some(&(_, m)) = IMPORT_MAPPING.iter().find(|(m, _)| *m == module) {
        return (Cow::Borrowed(m), Cow::Borrowed(name));
    }
    (Cow::Borrowed(module), Cow::Borrowed(name))
}

fn module_matches(rule: &str, module: &str) -> bool {
    module == rule || (module.starts_with(rule) && module.as_bytes().get(rule.len()) == Some(&b'.'))
}

fn find(
    table: &'static [Rule],
    module: &str,
    name: &str,
    prefix_names: bool,
) -> Option<&'static Rule> {
    let first = name.split('.').next().unwrap_or(name);
    table.iter().find(|r| match r.names {
        Names::All => module_matches(r.module, module),
        Names::Only(names) => {
            r.module == module
                && names
                    .iter()
                    .any(|n| *n == name || (prefix_names && *n == first))
        }
    })
}

/// Classify a global as written in a pickle (Python 2 names are mapped
/// first). See the module documentation for the order of the rules.
pub fn classify(module: &str, name: &str) -> Verdict {
    let (module, name) = python3_name(module, name);
    let (module, name) = (module.as_ref(), name.as_ref());
    if module.is_empty() || name.is_empty() {
        return Verdict {
            class: GlobalClass::Dangerous,
            source: "empty module or name: cannot be a normal import",
        };
    }
    if let Some(rule) = find(DANGEROUS, module, name, true) {
        return Verdict {
            class: GlobalClass::Dangerous,
            source: rule.source,
        };
    }
    if name.contains('.') {
        // `find_class` walks a dotted name attribute by attribute, and any
        // attribute may be a module object: `torch.serialization` +
        // `os.system` reaches `os.system`. Judge every run of components
        // that ends inside the name as a module path.
        let full: Vec<&str> = module.split('.').chain(name.split('.')).collect();
        let in_module = module.split('.').count();
        for split in in_module + 1..full.len() {
            for start in 0..split {
                let (m, n) = (full[start..split].join("."), full[split..].join("."));
                if let Some(rule) = find(DANGEROUS, &m, &n, true) {
                    return Verdict {
                        class: GlobalClass::Dangerous,
                        source: rule.source,
                    };
                }
            }
        }
    }
    if name.contains('.')
        && name
            .split('.')
            .any(|s| s.len() > 4 && s.starts_with("__") && s.ends_with("__"))
    {
        return Verdict {
            class: GlobalClass::Dangerous,
            source: "dotted name with a dunder attribute (attribute chain, docs/formats/pytorch.md, 'Scanner bypass classes' 2)",
        };
    }
    if let Some(rule) = find(ALLOWED, module, name, false) {
        return Verdict {
            class: GlobalClass::Allowed,
            source: rule.source,
        };
    }
    if let Some(rule) = find(BENIGN, module, name, false) {
        return Verdict {
            class: GlobalClass::BenignNotAllowlisted,
            source: rule.source,
        };
    }
    Verdict {
        class: GlobalClass::Unknown,
        source: "no rule matched",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(m: &str, n: &str) -> GlobalClass {
        classify(m, n).class
    }

    #[test]
    fn torch_allowlist_has_144_entries() {
        let n: usize = ALLOWED
            .iter()
            .map(|r| match r.names {
                Names::Only(names) => names.len(),
                Names::All => 0,
            })
            .sum();
        assert_eq!(n, 144);
    }

    #[test]
    fn verdicts() {
        use GlobalClass::*;
        assert_eq!(class("torch._utils", "_rebuild_tensor_v2"), Allowed);
        assert_eq!(class("torch", "FloatStorage"), Allowed);
        assert_eq!(class("collections", "OrderedDict"), Allowed);
        assert_eq!(class("__builtin__", "set"), Allowed);
        assert_eq!(class("torch", "bfloat16"), Allowed);
        assert_eq!(class("torch.serialization", "_get_layout"), Allowed);
        assert_eq!(class("argparse", "Namespace"), BenignNotAllowlisted);
        assert_eq!(
            class("numpy.core.multiarray", "_reconstruct"),
            BenignNotAllowlisted
        );
        assert_eq!(
            class("torch.nn.modules.linear", "Linear"),
            BenignNotAllowlisted
        );
        assert_eq!(class("__builtin__", "eval"), Dangerous);
        assert_eq!(class("builtins", "getattr"), Dangerous);
        assert_eq!(class("os", "system"), Dangerous);
        assert_eq!(class("os.path", "join"), Dangerous);
        assert_eq!(class("posix", "system"), Dangerous);
        assert_eq!(class("subprocess", "Popen"), Dangerous);
        assert_eq!(class("commands", "getoutput"), Dangerous);
        assert_eq!(class("__builtin__", "intern"), Dangerous); // -> sys.intern
        assert_eq!(class("operator", "attrgetter"), Dangerous);
        assert_eq!(class("operator", "add"), Unknown);
        assert_eq!(class("torch.serialization", "load"), Dangerous);
        assert_eq!(class("torch.storage", "_load_from_bytes"), Dangerous);
        assert_eq!(class("builtins", "getattr.__call__"), Dangerous);
        assert_eq!(class("torch.serialization", "os.system"), Dangerous);
        assert_eq!(class("mymodule", "subprocess.Popen"), Dangerous);
        assert_eq!(class("torch.nn", "functional.relu"), Unknown);
        assert_eq!(class("mymodule", "gadget.__init__.__globals__"), Dangerous);
        assert_eq!(class("", "x"), Dangerous);
        assert_eq!(class("ossify", "x"), Unknown);
        assert_eq!(class("my_project.models", "Net"), Unknown);
    }
}
