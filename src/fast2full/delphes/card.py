"""Delphes cards, evaluated as Delphes evaluates them: by a (safe) Tcl interpreter.

Delphes reads a card with ``ExRootConfReader``: a Tcl interpreter in which ``module Type Name {body}``
evaluates ``body`` in the namespace ``::Name``, ``add Name value...`` appends its values to the list
variable ``Name`` and every other command is plain Tcl, so cards use ``[expr ...]``, variables, ``for``
and ``foreach`` loops and ``source`` (also inside a module body).  A module's parameters are the
variables of its namespace; ``set ExecutionPath {...}`` at the top level names the modules to run.

Here the card is evaluated the same way, in a *safe* slave interpreter (``interp create -safe``, from
Python's standard ``tkinter.Tcl()``): ``exec``, ``open``, ``file``, ``socket``, ``load``, ``cd``... do
not exist in it, so a card can compute values but cannot run a program or touch a file.  The project
defines ``module``, ``set``, ``add`` and ``source`` in it; they call back into Python to record where
(file, line) every module and parameter was defined, and ``source`` reads only files the Python side
resolved (relative to the folder of the top-level card, as Delphes does; a loop is refused).  The values
the engine sees are read back from the interpreter's variables after the card has run.

Variables a module body uses for its own computation (a loop counter, ``set pi [expr {acos(-1)}]``,
a phi-bin list read as ``$PhiBins``) are Delphes-ignored helper variables: a variable the card itself
reads and that the module type does not list as a parameter is not a parameter.  Any other unknown
variable is an unknown parameter (an error with file and line, raised by the engine's modules).
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from fast2full.common import Fast2FullError

log = logging.getLogger("fast2full.delphes")

#: seconds a card may take to evaluate before it is stopped (an endless loop in a card)
EVAL_TIME_LIMIT_S = 20.0

TK_HINT = (
    "reading a Delphes card needs Python's Tcl binding (the standard module tkinter / "
    "_tkinter), which this Python lacks: install it (Debian/Ubuntu: apt-get install python3-tk; "
    "Fedora: dnf install python3-tkinter; conda: conda install tk) or use a Python built with Tk"
)


class CardError(Fast2FullError):
    """A malformed card or an unsupported module/parameter; the message names file and line."""

    def __init__(self, path: str | Path, line: int | None, cause: str):
        self.path, self.line, self.cause = str(path), line, cause
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {cause}")


def resolve_source(top_card: str | Path, name: str) -> Path:
    """Where ``source name`` points: relative to the folder of the **top-level** card (Delphes
    changes into that folder before evaluating the card), whichever file the line is in; an
    absolute name stays as it is."""
    return Path(top_card).parent / name


# --- the data model the engine reads -----------------------------------------------------------------
_master = None


def _tcl():
    """A plain (master) Tcl interpreter; one clear error if this Python has no Tcl binding."""
    try:
        import tkinter
    except ImportError:  # pragma: no cover - depends on the Python build
        raise Fast2FullError(TK_HINT) from None
    try:
        interp = tkinter.Tcl()
        interp.tk.wantobjects(False)  # results as Tcl strings, as Delphes reads them
        return interp
    except Exception as exc:  # pragma: no cover - a broken Tcl installation (no init.tcl...)
        raise Fast2FullError(f"{TK_HINT} (tkinter.Tcl() failed: {exc})") from None


def split_list(text: str) -> tuple[str, ...]:
    """A Tcl list's elements, as Tcl splits it (braces, quotes, backslashes)."""
    global _master
    if _master is None:
        _master = _tcl()
    import tkinter

    try:
        return tuple(str(x) for x in _master.splitlist(text))
    except tkinter.TclError as exc:
        raise ValueError(f"not a Tcl list ({exc}): {text[:80]!r}") from None


@dataclass
class Word:
    """One value of a parameter: a Tcl string (a number, a name, a formula or a list)."""

    text: str
    line: int
    braced: bool = False

    def words(self) -> list[Word]:
        """The value split as a Tcl list (``{1.0 0.0}`` -> two words); a plain word is a
        one-element list."""
        items = split_list(self.text)
        if len(items) == 1 and items[0] == self.text:
            return [self]
        return [Word(t, self.line, _is_list(t)) for t in items]


def _is_list(text: str) -> bool:
    return any(c in text for c in ' \t\n{}"\\')


@dataclass
class Param:
    """A module parameter: ``set`` gives one value, ``add`` builds a list of values."""

    name: str
    values: list[Word]
    line: int
    path: str
    is_add: bool = False

    def error(self, cause: str) -> CardError:
        return CardError(self.path, self.line, f"parameter '{self.name}': {cause}")

    @property
    def value(self) -> Word:
        if not self.values:
            raise self.error("has no value")
        return self.values[-1] if not self.is_add else self.values[0]

    def as_str(self) -> str:
        return self.value.text

    def as_float(self) -> float:
        try:
            return float(self.value.text)
        except ValueError:
            raise self.error(f"'{self.value.text}' is not a number") from None

    def as_int(self) -> int:
        try:
            return int(float(self.value.text))
        except ValueError:
            raise self.error(f"'{self.value.text}' is not an integer") from None

    def as_bool(self) -> bool:
        t = self.value.text.strip().lower()
        if t in ("true", "1", "yes", "on"):
            return True
        if t in ("false", "0", "no", "off"):
            return False
        raise self.error(f"'{self.value.text}' is not a boolean (true/false)")


@dataclass
class Module:
    type: str
    name: str
    path: str
    line: int
    params: dict[str, Param] = field(default_factory=dict)
    #: variables the card computed with and read itself (loop counters, ``pi``...), not parameters
    helpers: dict[str, Param] = field(default_factory=dict)

    def error(self, cause: str, line: int | None = None) -> CardError:
        return CardError(self.path, line or self.line, f"module {self.type} {self.name}: {cause}")


@dataclass
class Card:
    path: str
    execution_path: list[str]
    modules: dict[str, Module]
    globals: dict[str, Param]
    #: every file the evaluation read: the card first, then its ``source``d files in order
    files: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return Path(self.path).stem


# --- the safe interpreter ----------------------------------------------------------------------------
#: Tcl run in the slave once, before the card.  ``__f2f_*`` are the project's; ``::__f2f_set`` is Tcl's
#: own ``set`` (renamed, so that ``set`` can record where each parameter was written).
_SETUP = r"""
rename ::set ::__f2f_set
::__f2f_set ::__f2f_modseq 0
proc ::__f2f_loc {} {
    # where the card command that called set/add/module/source is: {source file line},
    # {module rel-line} (a line of the module body being evaluated) or {} (unknown)
    ::__f2f_set rel {}
    for {::__f2f_set k [::info frame]} {$k > 0} {::incr k -1} {
        ::__f2f_set f [::info frame $k]
        ::__f2f_set t [::dict get $f type]
        if {$t eq "source"} {return [::list source [::dict get $f file] [::dict get $f line]]}
        ::__f2f_set p [expr {[::dict exists $f proc] ? [::dict get $f proc] : ""}]
        if {$p eq "::module" && $t eq "proc" && $rel ne ""} {return [::list module $rel]}
        if {$p in {::set ::add ::source ::module ::__f2f_loc ::__f2f_note ::__f2f_frame2}} continue
        if {$t eq "eval" && $rel eq ""} {::__f2f_set rel [::dict get $f line]}
    }
    return {}
}
proc ::__f2f_note {kind q f1 f2} {
    # record where variable q was set (or its list started), from the card command's frame f1
    # and the frame f2 below it; the fast paths avoid walking the whole frame stack
    ::__f2f_set ::__f2f_mode($q) $kind
    ::__f2f_set t [::dict get $f1 type]
    if {$t eq "source"} {
        ::__f2f_set loc [::list source [::dict get $f1 file] [::dict get $f1 line]]
    } elseif {$t eq "eval" && [::dict get $f2 type] eq "proc" && [::dict exists $f2 proc]
              && [::dict get $f2 proc] eq "::module"} {
        ::__f2f_set loc [::list module [::dict get $f1 line] $::__f2f_modseq]
    } else {
        ::__f2f_set loc [::__f2f_loc]
    }
    # a loop setting the same variable on the same line: recorded once
    if {[::info exists ::__f2f_last($q)] && $::__f2f_last($q) eq "$kind $loc"} return
    ::__f2f_set ::__f2f_last($q) "$kind $loc"
    ::__f2f_record $kind $q $loc
}
proc ::__f2f_frame2 {} {
    # the frame below the card command that called set/add (two levels below this call)
    if {[::info frame] > 4} {return [::info frame -3]}
    return {type none}
}
proc ::set {args} {
    if {[::llength $args] != 2} {return [::uplevel 1 [::list ::__f2f_set {*}$args]]}
    ::upvar 1 [::lindex $args 0] __f2f_v
    ::__f2f_set __f2f_v [::lindex $args 1]
    ::__f2f_set q [::uplevel 1 [::list ::namespace which -variable [::lindex $args 0]]]
    if {$q ne ""} {::__f2f_note set $q [::info frame -1] [::__f2f_frame2]}
    return $__f2f_v
}
proc ::add {args} {
    if {[::llength $args] < 2} {
        return -code error "wrong # args: should be \"add paramName paramValue ?paramValue ...?\""
    }
    ::upvar 1 [::lindex $args 0] __f2f_v
    ::lappend __f2f_v {*}[::lrange $args 1 end]
    # a list keeps the line of its first `add`: later adds to it are not recorded
    ::__f2f_set k "[::uplevel 1 {::namespace current}] [::lindex $args 0]"
    if {[::info exists ::__f2f_addk($k)]} {
        ::__f2f_set q $::__f2f_addk($k)
        if {$::__f2f_mode($q) eq "add"} return
    } else {
        ::__f2f_set q [::uplevel 1 [::list ::namespace which -variable [::lindex $args 0]]]
        if {$q eq ""} return
        ::__f2f_set ::__f2f_addk($k) $q
    }
    ::__f2f_note add $q [::info frame -1] [::__f2f_frame2]
    return
}
proc ::module {args} {
    if {[::llength $args] < 2} {
        return -code error "wrong # args: should be \"module className moduleName ?arg ...?\""
    }
    if {[::llength $args] == 2} {::lappend args {}}
    ::incr ::__f2f_modseq
    ::__f2f_module [::lindex $args 0] [::lindex $args 1] [::lindex $args end] [::__f2f_loc] \
        [::dict get [::info frame -1] cmd]
    try {
        ::namespace eval ::[::lindex $args 1] {*}[::lrange $args 2 end]
    } finally {
        ::__f2f_module_end
    }
    return
}
proc ::source {args} {
    if {[::llength $args] != 1} {
        return -code error "wrong # args: should be \"source fileName\" (one file name)"
    }
    ::uplevel 1 [::list ::__f2f_source [::lindex $args 0] [::__f2f_loc]]
}
"""

_NOT_IN_SAFE = (
    "exec",
    "open",
    "file",
    "socket",
    "load",
    "cd",
    "pwd",
    "glob",
    "exit",
    "fconfigure",
    "encoding",
    "unload",
    "interp",
)
_LOCATION = re.compile(
    r'^\s*\((?:file "(?P<file>(?:[^"\\]|\\.)*)" line (?P<fline>\d+)|in namespace eval '
    r'"(?P<ns>[^"]*)" script line (?P<nline>\d+)|procedure "(?P<proc>[^"]*)" line \d+)'
    r"\)",
    re.M,
)


@dataclass
class _Def:
    kind: str
    path: str
    line: int


class _Evaluator:
    """Evaluates one top-level card in a fresh safe interpreter and builds the :class:`Card`."""

    def __init__(self, path: Path):
        self.top = path
        self.master = _tcl()
        self.slave = "card"
        self.master.eval(f"interp create -safe {self.slave}")
        for cmd in ("after", "vwait", "update"):  # could block the evaluation (no time limit)
            self.master.eval(f"interp hide {self.slave} {cmd}")
        self.error: CardError | None = None
        self.stack: list[str] = []  # files being sourced (loop check)
        self.files: list[str] = []
        self.shown: dict[str, str] = {}  # absolute path -> path as the user sees it
        self.mods: dict[str, Module] = {}
        self.mod_offset: dict[str, int] = {}  # module -> line of its body's first line - 1
        self.mod_stack: list[str] = []
        self.mod_body: dict[str, str] = {}
        self.defs: dict[str, _Def] = {}  # qualified variable -> where last set / first added
        for name, fn in (
            ("record", self._record),
            ("module", self._module),
            ("module_end", self._module_end),
            ("source", self._source),
        ):
            self.master.createcommand(f"__f2f_py_{name}", self._guard(fn))
            self.master.eval(f"interp alias {self.slave} ::__f2f_{name} {{}} __f2f_py_{name}")
        self.master.call(self.slave, "eval", _SETUP)

    # -- callbacks from the card (run in the master) ---------------------------------------------
    def _guard(self, fn):
        def call(*args):
            if self.error is not None:  # a recorded error stops the card even if it `catch`es it
                raise RuntimeError(self.error.cause)
            try:
                return fn(*args)
            except CardError as exc:
                self.error = exc
                raise RuntimeError(exc.cause) from None

        return call

    def _where(self, loc: str) -> tuple[str, int | None]:
        parts = self.master.splitlist(loc)
        if len(parts) == 3 and parts[0] == "source":
            return self._show(str(parts[1])), int(parts[2])
        if len(parts) >= 2 and parts[0] == "module" and self.mod_stack:
            mod = self.mods[self.mod_stack[-1]]
            return mod.path, self.mod_offset[mod.name] + int(parts[1])
        return str(self.top), None

    def _show(self, path: str) -> str:
        return self.shown.get(os.path.abspath(path), path)

    def _record(self, kind: str, qname: str, loc: str) -> str:
        path, line = self._where(loc)
        self.defs[qname] = _Def(kind, path, line or 0)
        return ""

    def _module(self, mtype: str, name: str, body: str, loc: str, cmd: str) -> str:
        path, line = self._where(loc)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise CardError(path, line, f"module name '{name}' is not a plain name")
        if name in self.mods:
            # Delphes: "module 'X' is already configured. Only first entry will be used." -- the
            # first type stays, the new body still runs in the same namespace (parameters merge)
            old = self.mods[name]
            log.warning(
                "%s:%s: module '%s' is already configured (%s at %s:%s): Delphes keeps the "
                "first type, the body's parameters are merged",
                path,
                line,
                name,
                old.type,
                old.path,
                old.line,
            )
        else:
            self.mods[name] = Module(mtype, name, path, line or 0)
            self.mod_body[name] = ""
        # the body's first line is the line of its opening brace (usually the module line)
        at = cmd.rfind(body)
        self.mod_offset[name] = (line or 0) + (cmd[:at].count("\n") if at >= 0 else 0) - 1
        self.mod_stack.append(name)
        self.mod_body[name] += "\n" + body
        return ""

    def _module_end(self) -> str:
        self.mod_stack.pop()
        return ""

    def _source(self, name: str, loc: str) -> str:
        path, line = self._where(loc)
        target = resolve_source(self.top, name)
        self._eval_file(target, (path, line))
        return ""

    def _eval_file(self, target: Path, origin: tuple[str, int | None] | None) -> None:
        absolute = os.path.abspath(target)
        if absolute in self.stack:
            where = origin or (str(target), None)
            raise CardError(
                where[0], where[1], f"recursive 'source' of {target} (a card sources itself, directly or not)"
            )
        if not target.is_file():
            if origin is None:
                raise CardError(target, None, "card file not found")
            raise CardError(
                origin[0],
                origin[1],
                f"sourced file not found: {target} (Delphes "
                f"resolves 'source' relative to the top-level card's folder "
                f"{self.top.parent})",
            )
        try:
            target.read_text()
        except UnicodeDecodeError as exc:
            raise CardError(target, None, f"not a text file ({exc})") from None
        self.shown[absolute] = str(target)
        for name in self.mod_stack:  # a file sourced inside a module body
            self.mod_body[name] += "\n" + target.read_text(errors="replace")
        self.files.append(str(target))
        self.stack.append(absolute)
        try:
            self.master.call("interp", "invokehidden", self.slave, "source", "-encoding", "utf-8", absolute)
        finally:
            self.stack.pop()

    # -- running the card ------------------------------------------------------------------------
    def run(self) -> None:
        import tkinter

        end = time.time() + EVAL_TIME_LIMIT_S
        self.master.eval(
            f"interp limit {self.slave} time -seconds {int(end)} -milliseconds {int(end % 1 * 1000)} -granularity 100"
        )
        try:
            try:
                self._eval_file(self.top, None)
            finally:
                self.master.eval(f"interp limit {self.slave} time -seconds {{}} -milliseconds {{}}")
        except tkinter.TclError as exc:
            if self.error is not None:
                raise self.error from None
            raise self._tcl_error(str(exc)) from None
        if self.error is not None:  # caught by the card's own `catch`
            raise self.error

    def _tcl_error(self, message: str) -> CardError:
        info = self.master.call(self.slave, "eval", "::__f2f_set ::errorInfo")
        path, line = str(self.top), None
        matches = list(_LOCATION.finditer(info))
        for k, m in enumerate(matches):
            if m.group("file") is not None:
                path, line = self._show(m.group("file").replace('\\"', '"')), int(m.group("fline"))
                break
            if (
                m.group("ns") is not None
                and k + 1 < len(matches)
                and matches[k + 1].group("proc") in ("::module", "module")
            ):
                name = m.group("ns").lstrip(":")
                if name in self.mods:
                    path, line = self.mods[name].path, self.mod_offset[name] + int(m.group("nline"))
                    break
        cause = message
        first = re.search(r'while executing\n"([^\n]*)', info)
        if first and first.group(1) not in message:
            cause += f" (in: {first.group(1).strip()[:100]})"
        cmd = re.match(r'invalid command name "([^"]*)"', message)
        if cmd and cmd.group(1) in _NOT_IN_SAFE:
            cause += (
                " — cards are evaluated in a safe Tcl interpreter: no exec, open, file, socket "
                "or other access to programs and files (only 'source')"
            )
        elif "time limit exceeded" in message:
            cause = f"card evaluation stopped after {EVAL_TIME_LIMIT_S:.0f} s (an endless loop?)"
        return CardError(path, line, f"Tcl error: {cause}")

    # -- reading the result back -----------------------------------------------------------------
    def _get(self, qname: str) -> str:
        return str(self.master.call(self.slave, "eval", f"::__f2f_set {{{qname}}}"))

    def card(self) -> Card:
        known = _module_params()
        modules = {}
        for name, mod in self.mods.items():
            mod.params, mod.helpers = {}, {}
            qvars = self.master.splitlist(self.master.call(self.slave, "eval", f"::info vars ::{name}::*"))
            for q in sorted(map(str, qvars), key=lambda q: (self.defs[q].line if q in self.defs else 0, q)):
                if self.master.call(self.slave, "eval", f"::array exists {{{q}}}") in (1, "1", True):
                    raise CardError(
                        mod.path, mod.line, f"module {mod.type} {name}: variable '{q}' is a Tcl array, not a parameter"
                    )
                pname = q.rsplit("::", 1)[1]
                param = self._param(pname, q, mod.path, mod.line)
                params = known.get(mod.type)
                is_read = _reads(self.mod_body.get(name, ""), name, pname)
                if is_read and (params is None or pname not in params):
                    mod.helpers[pname] = param
                else:
                    mod.params[pname] = param
            modules[name] = mod
        globals_ = {}
        for q, _d in self.defs.items():
            if q.count("::") == 1 and q.startswith("::") and q[2:] not in globals_:
                pname = q[2:]
                if pname.startswith("__f2f_"):
                    continue
                globals_[pname] = self._param(pname, q, str(self.top), 0)
        card = Card(str(self.top), [], modules, globals_, list(self.files))
        if "ExecutionPath" in globals_:
            try:
                card.execution_path = list(split_list(self._get("::ExecutionPath")))
            except ValueError as exc:
                raise globals_["ExecutionPath"].error(str(exc)) from None
        return card

    def _param(self, pname: str, q: str, path: str, line: int) -> Param:
        text = self._get(q)
        d = self.defs.get(q)
        ppath, pline = (d.path, d.line or line) if d else (path, line)
        if d is not None and d.kind == "add":
            try:
                items = split_list(text)
            except ValueError as exc:
                raise CardError(ppath, pline, f"parameter '{pname}': {exc}") from None
            return Param(pname, [Word(t, pline, _is_list(t)) for t in items], pline, ppath, is_add=True)
        return Param(pname, [Word(text, pline, _is_list(text))], pline, ppath)


def _reads(text: str, module: str, name: str) -> bool:
    """Whether Tcl text substitutes variable ``name`` (``$name``, ``${name}``, ``[set name]``)."""
    n = r"(?:::%s::)?%s" % (re.escape(module), re.escape(name))
    return re.search(r"\$\{?%s(?![A-Za-z0-9_])|\[\s*set\s+%s\s*\]" % (n, n), text) is not None


def _module_params() -> dict[str, dict]:
    """The parameter names each builtin module type accepts (to tell helper variables apart)."""
    try:
        from fast2full.delphes.modules import MODULES
    except ImportError:  # pragma: no cover - circular import while modules.py itself loads
        return {}
    return {t: cls.PARAMS for t, cls in MODULES.items()}


def evaluate_card(path: str | Path) -> Card:
    """Evaluate a card (and what it ``source``s) in a safe Tcl interpreter; no checks on its
    content beyond Tcl's (a fragment without ExecutionPath is fine here)."""
    try:
        ev = _Evaluator(Path(path))
    except Fast2FullError as exc:
        if isinstance(exc, CardError):
            raise
        raise CardError(path, None, str(exc)) from None
    try:
        ev.run()
        return ev.card()
    finally:
        # free the interpreter: the Python callbacks Tcl holds would otherwise keep it alive
        try:
            ev.master.eval(f"interp delete {ev.slave}")
            for name in ("record", "module", "module_end", "source"):
                ev.master.tk.deletecommand(f"__f2f_py_{name}")
        except Exception:  # pragma: no cover
            pass


def parse_card(path: str | Path) -> Card:
    """Evaluate a Delphes card into a :class:`Card`: its ExecutionPath must name defined modules."""
    card = evaluate_card(path)
    if "ExecutionPath" not in card.globals:
        kind = "a fragment meant to be 'source'd by a card?" if card.modules or card.globals else "an empty card?"
        raise CardError(path, None, f"no 'set ExecutionPath {{...}}' ({kind})")
    ep = card.globals["ExecutionPath"]
    if not card.execution_path:
        raise ep.error("the ExecutionPath is empty")
    for name in card.execution_path:
        if name not in card.modules:
            raise CardError(ep.path, ep.line, f"ExecutionPath names module '{name}' that is not defined")
    return card


def card_dependencies(card: str | Path) -> list[str]:
    """The card and every file it ``source``s, in the order Delphes reads them (paths relative to
    the top-level card's folder).  A ``source`` loop or a missing sourced file is a
    :class:`CardError` naming the file and line; a missing card is returned as it is (Snakemake
    then reports the missing input)."""
    card = Path(card)
    if not card.is_file():
        return [str(card)]
    return evaluate_card(card).files


__all__ = [
    "Card",
    "CardError",
    "Module",
    "Param",
    "Word",
    "card_dependencies",
    "evaluate_card",
    "parse_card",
    "resolve_source",
    "split_list",
]
