//! What can be wrong with program text, as kinds; [`TextError`] adds the
//! 1-based line and column.

use std::fmt;

/// A fault in program text, with its 1-based position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (byte) in that line.
    pub col: usize,
    /// The rule broken.
    pub kind: TextErrorKind,
}

impl TextError {
    /// `kind` at `line`, `col`.
    pub fn new(line: usize, col: usize, kind: TextErrorKind) -> TextError {
        TextError { line, col, kind }
    }
    /// Moves a position found inside an embedded string (e.g. a TOML value)
    /// to where that string starts in its file.
    pub fn shifted(mut self, line0: usize, col0: usize) -> TextError {
        if self.line == 1 {
            self.col += col0 - 1;
        }
        self.line += line0 - 1;
        self
    }
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.col, self.kind)
    }
}

impl std::error::Error for TextError {}

/// Why program text is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextErrorKind {
    /// The bytes are not UTF-8.
    #[error("not UTF-8 text")]
    NotUtf8,
    /// Nothing but white space.
    #[error("empty program text")]
    Empty,
    /// `-ddd` text with nothing in it.
    #[error("empty program text (expected a count)")]
    EmptyDdd,
    /// More lines after a one-line `-ddd` program.
    #[error("text after the one-line -ddd program")]
    TextAfterDdd,
    /// `-ddd`'s first field is not a count.
    #[error("bad instruction count `{0}`")]
    BadCount(String),
    /// `-ddd`'s first line has more than the count.
    #[error("the first field must be the instruction count")]
    CountFirst,
    /// `-ddd` count 0.
    #[error("instruction count 0: an empty program")]
    ZeroCount,
    /// `-ddd` count and lines disagree.
    #[error("count says {count} instructions but {found} follow")]
    CountMismatch {
        /// The count given.
        count: usize,
        /// Instructions found.
        found: usize,
    },
    /// A `-ddd` line without four numbers.
    #[error("expected `code jt jf k` (4 numbers), found {0} field(s)")]
    DddFields(usize),
    /// A field outside its range.
    #[error("bad {field} `{text}` (0 to {max})")]
    FieldRange {
        /// `opcode`, `jt`, `jf` or `k`.
        field: &'static str,
        /// The text.
        text: String,
        /// Its largest value.
        max: i64,
    },
    /// A negative field.
    #[error("negative field `{0}`")]
    NegativeField(String),
    /// `-dd`: a `{` with no `}`.
    #[error("`{{` without a closing `}}`")]
    Unclosed,
    /// `-dd`: a row without four fields.
    #[error("expected `{{ code, jt, jf, k }}`, found {0} field(s)")]
    DdFields(usize),
    /// `-dd`: a field that is not a number.
    #[error("bad {field} `{text}`")]
    BadField {
        /// `code`, `jt`, `jf` or `k`.
        field: &'static str,
        /// The text.
        text: String,
    },
    /// `-dd`: no rows.
    #[error("no `{{ code, jt, jf, k }}` rows found")]
    NoRows,
    /// No bytes of a raw program.
    #[error("empty raw program (0 bytes)")]
    EmptyRaw,
    /// A raw program that is not whole 8-byte records.
    #[error("raw program of {len} bytes is not whole 8-byte records: {} byte(s) left over at byte offset {}", len % 8, len / 8 * 8)]
    RawPartial {
        /// Its length in bytes.
        len: usize,
    },
    /// A listing line without `(NNN)`.
    #[error("expected `(NNN)` instruction number")]
    ExpectedPc,
    /// A listing's `(NNN)` that is not a number.
    #[error("bad instruction number `{0}`")]
    BadPc(String),
    /// A listing's instruction out of order.
    #[error("instruction number {found}, expected {expected}")]
    WrongPc {
        /// The number written.
        found: i64,
        /// The position it is at.
        expected: usize,
    },
    /// A listing's conditional jump without targets.
    #[error("conditional jump without `jt N jf M`")]
    NoTargets,
    /// A listing's targets not `jt N jf M`.
    #[error("expected `jt N jf M`")]
    ExpectedTargets,
    /// A jump target that is not a number.
    #[error("bad jump target `{0}`")]
    BadTarget(String),
    /// A listing's jump target out of a conditional jump's reach.
    #[error("jump target {target} from instruction {pc} is not 1 to 256 instructions ahead")]
    TargetReach {
        /// The target.
        target: i64,
        /// The jump's instruction.
        pc: usize,
    },
    /// A listing's `unimp` with a bad code.
    #[error("bad `unimp` code")]
    BadUnimp,
    /// A listing with no instructions.
    #[error("no instructions in listing")]
    NoListing,
    /// bpf_asm text with no instructions.
    #[error("no instructions in bpf_asm text")]
    NoAsm,
    /// A label defined twice.
    #[error("label `{0}` defined twice")]
    LabelTwice(String),
    /// A conditional jump with the wrong number of operands.
    #[error("`{mnemonic}` takes a value and {} label(s)", if *.inverted { "one" } else { "one or two" })]
    JumpArity {
        /// The mnemonic.
        mnemonic: String,
        /// A pseudo-jump (`jne`, `jle`, `jlt`) that takes one label.
        inverted: bool,
    },
    /// A jump target that is not a label.
    #[error("`{0}` is not a label")]
    NotLabel(String),
    /// `ja` without exactly one label.
    #[error("`{mnemonic}` takes one label, found `{found}`")]
    JaArity {
        /// The mnemonic.
        mnemonic: String,
        /// What follows it.
        found: String,
    },
    /// More than one operand.
    #[error("`{0}` takes one operand")]
    OneOperand(String),
    /// A label no line defines.
    #[error("undefined label `{0}`")]
    UndefinedLabel(String),
    /// A label at or before its jump.
    #[error("label `{0}` is not after this jump (classic BPF only jumps forward)")]
    LabelBehind(String),
    /// A label further than a conditional jump reaches.
    #[error("label `{label}` is {distance} instructions ahead; conditional jumps reach 255")]
    LabelFar {
        /// The label.
        label: String,
        /// How far ahead it is.
        distance: usize,
    },
    /// An operand with a bad number.
    #[error("bad number `{number}` in operand `{operand}`")]
    BadNumber {
        /// The number's text.
        number: String,
        /// The operand's text.
        operand: String,
    },
    /// An operand with `[` and no `]`.
    #[error("missing `]` in `{0}`")]
    MissingBracket(String),
    /// A `4*(...)` operand not of the `4*([k]&0xf)` shape.
    #[error("expected `4*([k]&0xf)`, found `{0}`")]
    ExpectedMsh(String),
    /// A mnemonic with an operand it does not take (or no such mnemonic).
    #[error("`{mnemonic}` does not take operand {operand}")]
    OperandNotTaken {
        /// The mnemonic.
        mnemonic: String,
        /// The operand, as parsed.
        operand: String,
    },
    /// The same, in bpf_asm text, where an unknown mnemonic looks alike.
    #[error("unknown instruction or operand: `{mnemonic}` does not take operand {operand}")]
    UnknownInstruction {
        /// The mnemonic.
        mnemonic: String,
        /// The operand, as parsed.
        operand: String,
    },
    /// A conditional jump compared with something else than `#k` or `x`.
    #[error("`{mnemonic}` compares with `#k` or `x`, not {operand}")]
    CompareOperand {
        /// The mnemonic.
        mnemonic: &'static str,
        /// The operand, as parsed.
        operand: String,
    },
}
