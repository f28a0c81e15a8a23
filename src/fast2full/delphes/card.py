"""Delphes cards: the TCL subset they are written in, parsed without a TCL interpreter.

Supported syntax (what Delphes' own ``ExRootConfReader`` reads from a card, minus TCL programming):

* ``set Name value`` and ``add Name value1 value2 ...`` (``add`` appends each word to a list);
* ``module Type Name { ... }`` with ``set``/``add`` inside;
* ``source other.tcl`` (path relative to the top-level card's folder, as in Delphes);
* ``#`` comments at the start of a command, ``;`` separators, ``\\``-newline continuation;
* words: bare words, ``"quoted strings"``, ``{braced lists}`` (nested, kept verbatim).

Loops, ``expr``, ``$var`` substitution and other TCL commands are rejected with the file and line,
so a card stays a plain list of parameters that the builtin engine and real Delphes read alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from fast2full.common import Fast2FullError

_SOURCE = re.compile(r"^\s*source\s+(\S+)")


class CardError(Fast2FullError):
    """A malformed card or an unsupported module/parameter; the message names file and line."""

    def __init__(self, path: str | Path, line: int | None, cause: str):
        self.path, self.line, self.cause = str(path), line, cause
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {cause}")


def card_dependencies(card: str | Path, _top: Path | None = None, _seen: tuple = ()) -> list[str]:
    """The card and, recursively, every file it ``source``s (paths relative to the top-level card's
    folder, as Delphes resolves them).  A ``source`` loop is a :class:`CardError` naming the file."""
    card = Path(card)
    top = _top or card
    if card.resolve() in _seen:
        raise CardError(card, None, "recursive 'source' (a card sources itself, directly or not)")
    out = [str(card)]
    if not card.is_file():
        return out
    for line in card.read_text().splitlines():
        m = _SOURCE.match(line)
        if m:
            out += card_dependencies(resolve_source(top, m.group(1).strip('"{}')), top,
                                     _seen + (card.resolve(),))
    return out


def resolve_source(top_card: str | Path, name: str) -> Path:
    """Where ``source name`` points: relative to the folder of the **top-level** card (Delphes
    changes into that folder before evaluating the card), whichever file the line is in; an
    absolute name stays as it is."""
    return Path(top_card).parent / name


@dataclass
class Word:
    """One TCL word; ``braced`` words are lists (``{1.0 0.0}``) or formulas."""

    text: str
    line: int
    braced: bool = False

    def words(self) -> list[Word]:
        """A braced word split into its words (a list); a plain word is a one-element list."""
        if not self.braced:
            return [self]
        cmds = _tokenize(self.text, "<list>", self.line, split_commands=False)
        return [w for cmd in cmds for w in cmd]


@dataclass
class Param:
    """A module parameter: ``set`` gives one value, ``add`` appends words."""

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

    def error(self, cause: str, line: int | None = None) -> CardError:
        return CardError(self.path, line or self.line, f"module {self.type} {self.name}: {cause}")


@dataclass
class Card:
    path: str
    execution_path: list[str]
    modules: dict[str, Module]
    globals: dict[str, Param]

    @property
    def name(self) -> str:
        return Path(self.path).stem


def _tokenize(text: str, path: str, line0: int = 1, split_commands: bool = True) -> list[list[Word]]:
    """Split TCL text into commands (lists of words), tracking line numbers."""
    cmds: list[list[Word]] = []
    cur: list[Word] = []
    i, n, line = 0, len(text), line0
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] == "\n":  # line continuation
            i += 2
            line += 1
            continue
        if c in " \t\r":
            i += 1
            continue
        if c == "\n" or c == ";":
            if split_commands and cur:
                cmds.append(cur)
                cur = []
            if c == "\n":
                line += 1
            i += 1
            continue
        if c == "#" and not cur:  # comment to end of line
            while i < n and text[i] != "\n":
                i += 1
            continue
        if c == "{":
            depth, j, start_line = 1, i + 1, line
            while j < n and depth:
                if text[j] == "\\" and j + 1 < n:
                    j += 2
                    continue
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                elif text[j] == "\n":
                    line += 1
                j += 1
            if depth:
                raise CardError(path, start_line, "unbalanced '{': missing closing brace")
            cur.append(Word(text[i + 1:j - 1], start_line, braced=True))
            i = j
        elif c == '"':
            j, start_line = i + 1, line
            while j < n and text[j] != '"':
                if text[j] == "\n":
                    line += 1
                j += 1
            if j >= n:
                raise CardError(path, start_line, "unterminated quoted string")
            cur.append(Word(text[i + 1:j], start_line))
            i = j + 1
        elif c == "}":
            raise CardError(path, line, "unbalanced '}' without a matching '{'")
        else:
            j = i
            while j < n and text[j] not in " \t\r\n;{}\"":
                if text[j] == "\\" and j + 1 < n and text[j + 1] == "\n":
                    break
                j += 1
            word = text[i:j]
            if "$" in word or word.startswith("["):
                raise CardError(path, line, f"TCL substitution '{word}' is not supported: write the "
                                            "value out")
            cur.append(Word(word, line))
            i = j
    if cur:
        cmds.append(cur)
    return cmds


def _parse_body(body: Word, module: Module) -> None:
    for cmd in _tokenize(body.text, module.path, body.line):
        verb = cmd[0].text
        if verb not in ("set", "add") or len(cmd) < 3 and verb == "set" or len(cmd) < 2:
            raise CardError(module.path, cmd[0].line,
                            f"module {module.type} {module.name}: expected 'set Name value' or "
                            f"'add Name value...', got '{' '.join(w.text for w in cmd)}'")
        name = cmd[1].text
        if verb == "set":
            if len(cmd) != 3:
                raise CardError(module.path, cmd[0].line, f"'set {name}' takes exactly one value "
                                "(brace a list or formula: {...})")
            module.params[name] = Param(name, [cmd[2]], cmd[0].line, module.path)
        else:
            p = module.params.get(name)
            if p is None or not p.is_add:
                p = module.params[name] = Param(name, [], cmd[0].line, module.path, is_add=True)
            p.values.extend(cmd[2:])


def parse_card(path: str | Path, _card: Card | None = None, _seen: tuple = (),
               _top: Path | None = None, _from: tuple[str, int] | None = None) -> Card:
    """Parse a Delphes card (and what it ``source``s) into a :class:`Card`."""
    path = Path(path)
    top = _top or path
    if path.resolve() in _seen:
        raise CardError(path, None, "recursive 'source'")
    try:
        text = path.read_text()
    except FileNotFoundError:
        if _from is not None:
            raise CardError(_from[0], _from[1], f"sourced file not found: {path} (Delphes resolves "
                            f"'source' relative to the top-level card's folder {top.parent})") from None
        raise CardError(path, None, "card file not found") from None
    except UnicodeDecodeError as exc:
        raise CardError(path, None, f"not a text file ({exc})") from None
    card = _card or Card(str(path), [], {}, {})
    for cmd in _tokenize(text, str(path)):
        verb, line = cmd[0].text, cmd[0].line
        if verb == "source":
            if len(cmd) != 2:
                raise CardError(path, line, "'source' takes one file name")
            parse_card(resolve_source(top, cmd[1].text), card, _seen + (path.resolve(),), top,
                       (str(path), line))
        elif verb == "set":
            if len(cmd) != 3:
                raise CardError(path, line, "'set' takes a name and one value")
            name = cmd[1].text
            if name == "ExecutionPath":
                card.execution_path = [w.text for w in cmd[2].words()]
            card.globals[name] = Param(name, [cmd[2]], line, str(path))
        elif verb == "module":
            if len(cmd) != 4 or not cmd[3].braced:
                raise CardError(path, line, "expected 'module Type Name { ... }'")
            mod = Module(cmd[1].text, cmd[2].text, str(path), line)
            if mod.name in card.modules:
                raise CardError(path, line, f"module name '{mod.name}' defined twice")
            _parse_body(cmd[3], mod)
            card.modules[mod.name] = mod
        else:
            raise CardError(path, line, f"unsupported command '{verb}' (supported: set, add inside "
                                        "modules, module, source, # comments)")
    if _card is None:
        if not card.execution_path:
            raise CardError(path, None, "no 'set ExecutionPath {...}'")
        for name in card.execution_path:
            if name not in card.modules:
                raise CardError(card.globals["ExecutionPath"].path, card.globals["ExecutionPath"].line,
                                f"ExecutionPath names module '{name}' that is not defined")
    return card
