"""What a session step looks like: the ``ansi``, ``rgb_array`` and ``human`` render modes of the ecomsim envs.

One view of a step (:class:`StepView`, built by :func:`step_views` from the core's state,
the step's info and the shopper model's :meth:`~ecomsim.shoppers.base.ShopperModel.describe`)
is drawn two ways:

* :func:`ansi` — a few lines of text;
* :func:`picture` — an ``(H, WIDTH, 3)`` uint8 image drawn with numpy only (a 5x7 bitmap
  font, colour blocks and bars), cheap enough to record every step of an evaluation
  episode (``python scripts/benchmark_render.py`` prints frames/s).

The picture, top to bottom: a header (step of ``max_steps``, the shopper model, the
shopper's channel and segment, the session's state: new, browsing, left or timed out),
the session counters, one line per quantity the shopper model describes (label,
value, a bar over the quantity's span), then per slot the shown item (category colour
and name, item index, price, quality bar, and the outcome: shown / clicked / carted /
bought, each lit or dimmed) with a ``why:`` line under it for that item's reasons
(:attr:`StepView.reasons`, empty until explanations fill it). Heights are multiples of 16
pixels (what video encoders ask for).

:class:`HumanView` is the ``human`` mode: the picture in a pygame window when pygame is
installed (``pip install -e ".[render]"``) and a display exists (``DISPLAY`` /
``WAYLAND_DISPLAY``, macOS, Windows, or an ``SDL_VIDEODRIVER`` you set); otherwise it prints
the ansi trace to stdout.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ecomsim.config import CHANNELS
from ecomsim.errors import suggest
from ecomsim.shoppers.base import Quantity
from ecomsim.shoppers.population import SEGMENTS

RENDER_MODES = ["ansi", "rgb_array", "human"]
RENDER_FPS = 4

# 5x7 glyphs, one hex byte per row (bit 4 = leftmost pixel); lowercase is drawn as uppercase, unknown as '?'
_FONT_HEX = {
    "0": "0E11131519110E", "1": "040C040404040E", "2": "0E11010204081F", "3": "1F02040201110E",
    "4": "02060A121F0202", "5": "1F101E0101110E", "6": "0608101E11110E", "7": "1F010204080808",
    "8": "0E11110E11110E", "9": "0E11110F01020C", "A": "0E1111111F1111", "B": "1E11111E11111E",
    "C": "0E11101010110E", "D": "1C12111111121C", "E": "1F10101E10101F", "F": "1F10101E101010",
    "G": "0E11101711110F", "H": "1111111F111111", "I": "0E04040404040E", "J": "0702020202120C",
    "K": "11121418141211", "L": "1010101010101F", "M": "111B1515111111", "N": "11111915131111",
    "O": "0E11111111110E", "P": "1E11111E101010", "Q": "0E11111115120D", "R": "1E11111E141211",
    "S": "0F10100E01011E", "T": "1F040404040404", "U": "1111111111110E", "V": "11111111110A04",
    "W": "1111111515150A", "X": "11110A040A1111", "Y": "1111110A040404", "Z": "1F01020408101F",
    " ": "00000000000000", ".": "00000000000C0C", ",": "000000000C0408", ":": "000C0C000C0C00",
    "-": "0000001F000000", "+": "0004041F040400", "/": "00010204081000", "%": "18190204081303",
    "(": "02040808080402", ")": "08040202020408", "|": "04040404040404", "=": "00001F001F0000",
    "<": "02040810080402", ">": "08040201020408", "?": "0E110102040004", "!": "04040404040004",
    "_": "0000000000001F", "#": "0A0A1F0A1F0A0A", "*": "0004150E150400", "[": "0E08080808080E",
    "]": "0E02020202020E", "'": "04040800000000", "$": "040F140E051E04",
}
GLYPH_H, GLYPH_W = 7, 5
CHAR_W, LINE_H, MARGIN, WIDTH = 6, 11, 8, 640
_CHARS = "".join(_FONT_HEX)
# (glyphs, 7, 6) bool: each glyph with one blank column after it, so a string is one reshape
_GLYPHS = np.zeros((len(_CHARS), GLYPH_H, CHAR_W), dtype=bool)
for _g, _c in enumerate(_CHARS):
    _rows = bytes.fromhex(_FONT_HEX[_c])
    _GLYPHS[_g, :, :GLYPH_W] = [[(r >> (GLYPH_W - 1 - b)) & 1 for b in range(GLYPH_W)] for r in _rows]
_LOOKUP = np.full(256, _CHARS.index("?"), dtype=np.intp)
for _g, _c in enumerate(_CHARS):
    _LOOKUP[ord(_c)] = _g
    _LOOKUP[ord(_c.lower())] = _g

BACKGROUND, PANEL, TEXT, DIM, FAINT = (24, 26, 33), (38, 41, 52), (230, 232, 238), (120, 124, 138), (70, 74, 88)
BAR = (95, 170, 240)
OUTCOME_COLOURS = ((150, 150, 160), (250, 200, 60), (240, 130, 50), (80, 200, 110))  # shown, clicked, carted, bought
OUTCOME_NAMES = ("SHOWN", "CLICK", "CART", "BUY")
CATEGORY_COLOURS = np.array([
    (230, 85, 75), (70, 150, 230), (90, 190, 100), (235, 170, 50), (170, 110, 220), (60, 190, 190),
    (230, 120, 180), (160, 160, 80), (120, 140, 255), (240, 140, 100), (140, 200, 230), (200, 200, 200),
], dtype=np.uint8)


def check_render_mode(render_mode: str | None) -> str | None:
    """``render_mode`` when it is ``None`` or one of :data:`RENDER_MODES`, else a ``ValueError`` saying so."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be one of {RENDER_MODES} or None, got {render_mode!r}."
                         f"{suggest(str(render_mode), RENDER_MODES)}")
    return render_mode


def render_rows(mode: str | None, core: Any, info: Mapping[str, np.ndarray], rows: Sequence[int],
                human: "HumanView | None" = None, reasons: Sequence[Sequence[str]] | None = None) -> list:
    """What an env's ``render()`` returns for sessions ``rows`` in ``mode``: per row the ansi text or the picture;
    ``human``: ``human`` shows the first row, and every entry is ``None``; no mode: ``None`` per row (with
    Gymnasium's warning). ``reasons``: per session of the core, one string per slot (``explain=True``)."""
    if mode is None:
        from gymnasium import logger

        logger.warn("render() was called with render_mode=None; make the env with render_mode='ansi', "
                    "'rgb_array' or 'human'")
        return [None] * len(rows)
    shown = list(rows[:1] if mode == "human" else rows)
    views = step_views(core, info, shown, None if reasons is None else [reasons[r] for r in shown])
    if mode == "human":
        assert human is not None, "a human-mode env holds its HumanView"
        human.show(views[0])
        return [None] * len(rows)
    return [ansi(v) if mode == "ansi" else picture(v) for v in views]


@dataclass(frozen=True)
class StepView:
    """Everything a picture or trace of one session after one step shows.

    Attributes:
        title: the env kind (``"recommend"`` / ``"slate"``).
        step, max_steps: steps taken in the session and its limit.
        model: the shopper model's name; channel, segment: the shopper's.
        status: ``"new"`` (no step yet), ``"browsing"``, ``"left"`` or ``"timed out"``.
        counters: session totals by name (impressions, clicks, carts, purchases, revenue in currency units).
        items: ``(k,)`` item indexes shown at the last step, -1 for empty slots.
        categories: ``k`` category names ("" for empty slots); price ``(k,)`` currency units; quality ``(k,)`` in [0, 1].
        outcomes: ``(4, k)`` bool: shown, clicked, carted, purchased per slot.
        quantities: the shopper model's described quantities with their values.
        reasons: one line of reasons per slot (empty strings until explanations fill them).
    """

    title: str
    step: int
    max_steps: int
    model: str
    channel: str
    segment: str
    status: str
    counters: dict[str, float]
    items: np.ndarray
    categories: tuple[str, ...]
    category_index: np.ndarray
    price: np.ndarray
    quality: np.ndarray
    outcomes: np.ndarray
    quantities: tuple[tuple[Quantity, float], ...]
    reasons: tuple[str, ...]


def step_views(core: Any, info: Mapping[str, np.ndarray], rows: Sequence[int] | None = None,
               reasons: Sequence[Sequence[str]] | None = None) -> list[StepView]:
    """The views of sessions ``rows`` (all when None) of ``core`` (a ``SimulationCore``) after the step whose
    batched ``info`` (``ecomsim.info.step_info``: ``(N, ...)`` arrays) is given; ``reasons``: per row, one
    string per slot. Reads the state only (``describe`` is pure), so rendering never changes a trajectory."""
    rows = np.arange(core.num_envs) if rows is None else np.asarray(rows, dtype=np.int64)
    described = core.shopper.describe(rows)
    quantities = core.shopper.quantities
    cat, s, pt = core.catalog, core.session, core.portraits
    views = []
    for j, r in enumerate(rows.tolist()):
        items = np.asarray(info["items"][r]).reshape(-1)
        ok = items >= 0
        safe = np.where(ok, items, 0)
        category = np.where(ok, cat.category[safe], -1)
        left, length = bool(info["left"][r]), int(info["session_length"][r])
        status = "left" if left else "timed out" if length >= core.config.max_steps else \
            "new" if length == 0 else "browsing"
        views.append(StepView(
            title=core.config.mode, step=int(s.step_count[r]), max_steps=core.config.max_steps,
            model=core.shopper.name, channel=CHANNELS[int(pt.channel[r])], segment=SEGMENTS[int(pt.segment[r])],
            status=status,
            counters={"impressions": int(s.impressions[r]), "clicks": int(s.clicks[r]), "carts": int(s.carts[r]),
                      "purchases": int(s.purchases[r]), "revenue": float(s.revenue[r])},
            items=items, categories=tuple(cat.category_names[c] if c >= 0 else "" for c in category.tolist()),
            category_index=category, price=np.where(ok, cat.price[safe], 0.0), quality=np.where(ok, cat.quality[safe], 0.0),
            outcomes=np.stack([ok] + [np.asarray(info[key][r]).reshape(-1) for key in ("clicked", "carted", "purchased")]),
            quantities=tuple((q, float(described[q.name][j])) for q in quantities),
            reasons=tuple(reasons[j]) if reasons is not None else ("",) * len(items),
        ))
    return views


# ===================================================================== text
def ansi(view: StepView) -> str:
    """The view as text: header, counters, the shopper's quantities, one line per slot (and its reasons)."""
    c = view.counters
    lines = [
        f"{view.title} step {view.step}/{view.max_steps} | {view.model} shopper | {view.channel}, {view.segment} | {view.status}",
        f"  session: impressions {c['impressions']}, clicks {c['clicks']}, carts {c['carts']}, "
        f"purchases {c['purchases']}, revenue {c['revenue']:.2f}",
        "  shopper: " + ", ".join(f"{q.label} {v:.3f}" for q, v in view.quantities),
    ]
    for k in range(len(view.items)):
        if view.items[k] < 0:
            lines.append(f"  slot {k}: empty")
        else:
            done = [name.lower() for name, on in zip(OUTCOME_NAMES, view.outcomes[:, k]) if on]
            lines.append(f"  slot {k}: item {int(view.items[k])} {view.categories[k]} price {view.price[k]:.2f} "
                         f"quality {view.quality[k]:.2f} -> {', '.join(done)}")
        if view.reasons[k]:
            lines.append(f"    why: {view.reasons[k]}")
    return "\n".join(lines)


# ================================================================== picture
class _Grid:
    """A picture drawn as a grid of text cells (``LINE_H`` x ``CHAR_W`` pixels) over rectangles and bars: the
    text is collected cell by cell and drawn in one fancy-indexing pass over the cells that hold a glyph."""

    def __init__(self, lines: int) -> None:
        if lines not in _BLANK:
            height = -(-(2 * MARGIN + lines * LINE_H) // 16) * 16
            _BLANK[lines] = np.full((height, WIDTH, 3), BACKGROUND, dtype=np.uint8)
        self.canvas = _BLANK[lines].copy()
        self.cols = (WIDTH - 2 * MARGIN) // CHAR_W
        self.codes = np.full((lines, self.cols), _SPACE, dtype=np.intp)
        self.colours = np.zeros((lines, self.cols, 3), dtype=np.uint8)

    def xy(self, line: int, col: float) -> tuple[int, int]:
        """Pixel ``(x, y)`` of the top-left of a glyph cell."""
        return MARGIN + int(col * CHAR_W), MARGIN + line * LINE_H + (LINE_H - GLYPH_H) // 2

    def text(self, line: int, col: int, string: str, colour) -> int:
        """Put ``string`` from cell ``col`` of ``line`` (clipped at the right edge); returns the column after it."""
        string = string[:max(self.cols - col, 0)]
        codes = np.frombuffer(string.encode("ascii", "replace"), dtype=np.uint8)
        self.codes[line, col:col + len(codes)] = _LOOKUP[codes]
        self.colours[line, col:col + len(codes)] = colour
        return col + len(codes)

    def rect(self, line: int, col: float, width_px: int, colour, height: int = GLYPH_H, dy: int = 0) -> None:
        """A rectangle from the top-left of cell ``col`` of ``line`` (``dy`` pixels lower)."""
        x, y = self.xy(line, col)
        self.canvas[y + dy:y + dy + height, x:x + width_px] = colour

    def bar(self, line: int, col: float, width_px: int, fraction: float, colour=BAR) -> None:
        """A bar filled to ``fraction`` (clipped to [0, 1] for the drawing only; nothing for NaN)."""
        self.rect(line, col, width_px, FAINT)
        if np.isfinite(fraction):
            self.rect(line, col, int(round(width_px * min(max(fraction, 0.0), 1.0))), colour)

    def finish(self) -> np.ndarray:
        """Draw the collected text (only the cells that hold a glyph) and return the canvas."""
        line, col = np.nonzero(self.codes != _SPACE)
        mask = _GLYPHS[self.codes[line, col]]  # (cells, 7, 6)
        top = MARGIN + (LINE_H - GLYPH_H) // 2
        corner = (top + line * LINE_H) * WIDTH + MARGIN + col * CHAR_W  # flat pixel index of each cell
        pixels = (corner[:, None, None] + _CELL_OFFSETS)[mask]
        colours = np.broadcast_to(self.colours[line, col][:, None, None], mask.shape + (3,))[mask]
        self.canvas.reshape(-1, 3)[pixels] = colours
        return self.canvas


_BLANK: dict[int, np.ndarray] = {}  # background canvases by line count
_SPACE = _CHARS.index(" ")
_CELL_OFFSETS = np.arange(GLYPH_H)[:, None] * WIDTH + np.arange(CHAR_W)[None, :]  # (7, 6) flat offsets in a cell


def picture_height(num_quantities: int, slate_size: int) -> int:
    """Pixel height of a picture (a multiple of 16)."""
    return -(-(2 * MARGIN + (5 + num_quantities + 2 * slate_size) * LINE_H) // 16) * 16


def picture(view: StepView) -> np.ndarray:
    """The view as a ``(picture_height, WIDTH, 3)`` uint8 RGB image (layout in the module docstring)."""
    k, nq = len(view.items), len(view.quantities)
    g = _Grid(5 + nq + 2 * k)
    g.rect(0, -1, WIDTH - MARGIN, PANEL, height=LINE_H)
    col = g.text(0, 0, f"ECOMSIM {view.title}", TEXT)
    col = g.text(0, col + 3, f"STEP {view.step}/{view.max_steps}", TEXT)
    g.bar(0, col + 1, 60, view.step / view.max_steps)
    g.text(0, col + 13, f"{view.model} SHOPPER  {view.channel}/{view.segment}", DIM)
    status_colour = {"left": (240, 100, 90), "timed out": (235, 170, 50), "new": BAR}.get(view.status, TEXT)
    g.text(0, g.cols - len(view.status), view.status, status_colour)
    c = view.counters
    g.text(1, 0, f"IMPRESSIONS {c['impressions']}  CLICKS {c['clicks']}  CARTS {c['carts']}  "
                 f"PURCHASES {c['purchases']}  REVENUE {c['revenue']:.2f}", TEXT)
    for i, (q, value) in enumerate(view.quantities):
        g.text(3 + i, 0, q.label, DIM)
        g.text(3 + i, 30, f"{value:8.3f}", TEXT)
        g.bar(3 + i, 40, 160, (value - q.low) / (q.high - q.low))
    line = 4 + nq
    g.text(line, 0, "SLOT  ITEM   CATEGORY       PRICE QUALITY", DIM)
    g.text(line, 62, "OUTCOME", DIM)
    for slot in range(k):
        line = 5 + nq + 2 * slot
        g.rect(line + 1, -1, WIDTH - MARGIN, PANEL, height=1, dy=GLYPH_H + 1)  # a rule under the slot
        if view.items[slot] < 0:
            g.text(line, 0, f"{slot:>4}  empty", FAINT)
        else:
            g.text(line, 0, f"{slot:>4}", TEXT)
            g.rect(line, 5, CHAR_W + 2, CATEGORY_COLOURS[view.category_index[slot] % len(CATEGORY_COLOURS)])
            col = g.text(line, 7, f"{int(view.items[slot]):>5}  {view.categories[slot][:12]:<12}"
                                  f"{view.price[slot]:>8.2f}  {view.quality[slot]:.2f}", TEXT)
            g.bar(line, col + 1, 48, float(view.quality[slot]))
            col = 62
            for name, on, lit in zip(OUTCOME_NAMES, view.outcomes[:, slot], OUTCOME_COLOURS):
                col = g.text(line, col, name, lit if on else FAINT) + 2
        g.text(line + 1, 7, f"why: {view.reasons[slot]}", DIM)
    return g.finish()


# ==================================================================== human
def display_available() -> bool:
    """Whether a window can be opened: a display server, macOS / Windows, or an ``SDL_VIDEODRIVER`` set."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("SDL_VIDEODRIVER")
                or sys.platform in ("darwin", "win32"))


class HumanView:
    """The ``human`` mode: :meth:`show` puts the picture in a pygame window (``fps`` frames a second), or prints
    the ansi trace when pygame is missing or no display exists (decided at the first :meth:`show`)."""

    def __init__(self, fps: int = RENDER_FPS) -> None:
        self.fps = fps
        self.window: Any = None
        self.uses_window: bool | None = None

    def show(self, view: StepView) -> None:
        if self.uses_window is None:
            self.uses_window = display_available() and _has_pygame()
        if not self.uses_window:
            print(ansi(view), flush=True)
            return
        import pygame

        frame = picture(view)
        if self.window is None or self.window.get_size() != (frame.shape[1], frame.shape[0]):
            pygame.init()
            pygame.display.set_caption("ecomsim")
            self.window = pygame.display.set_mode((frame.shape[1], frame.shape[0]))
            self.clock = pygame.time.Clock()
        pygame.surfarray.blit_array(self.window, frame.swapaxes(0, 1))
        pygame.event.pump()
        pygame.display.flip()
        self.clock.tick(self.fps)

    def close(self) -> None:
        if self.window is not None:
            import pygame

            pygame.display.quit()
            self.window = None


def _has_pygame() -> bool:
    try:
        import pygame  # noqa: F401
    except ImportError:
        return False
    return True
