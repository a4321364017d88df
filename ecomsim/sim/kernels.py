"""Compiled (numba) kernels of a core step: one loop over sessions per kernel, no temporaries.

Why: a step of one session made about a hundred small numpy calls (a microsecond each
whatever the size), and at thousands of sessions each numpy call wrote a temporary
the next one read back. Each kernel here walks the sessions once, row by row, and
does everything one row needs; so a row's result depends on that row's inputs only
and sub-env ``i`` of a vector env equals a single env bit for bit, whatever the batch.

The kernels compute the same quantities, with the same float64 operations, as the
numpy definitions they replace (``tests/sim/test_kernels.py`` checks them against
those definitions: bit for bit, except sums whose order differs, such as the
observation's affinity, within one float32 ulp): the uniforms are the splitmix64 streams of
``ecomsim.sim.streams``, retrieval is the recipe of ``ecomsim.sim.retrieval``, the observation the
layout of ``ecomsim.sim.observation``, the DNN features those of
``ecomsim.shoppers.behavior.SessionTracker``, and the DNN forward the network of
``ecomsim.shoppers.network.BehaviorNet`` with the input normalisation folded into the first
layers (float32 like torch; equal to it within float32 rounding).

**State bundles.** A kernel called from Python takes the state as the bundles of
``ecomsim.sim.state`` (``session``, ``portrait``, ``rng``, ``item_table``, ``retrieval``,
``tracker``, ``outcome``, ``consts``: plain tuples of arrays, declared there with shapes
and units) and unpacks them into named locals on its first lines; the row functions take
those locals. Plain tuples because numba's dispatch types them almost as fast as flat
arguments (measured with numba 0.68 on this machine: a call with 40 mixed arrays took
1.9 us flat, 2.4 us as four tuples, 4.6 us as four ``NamedTuple``s; the DNN step's 54
arrays 2.9 us flat and 3.0 us as its bundles, in CPU time), while a jitclass instance,
though quick to dispatch (0.3 us), is a fresh type in every process, so ``cache=True``
never hits and every start would recompile all kernels.

**One file.** Numba's cache (``cache=True``) keys a compiled function on its own source
file only: the row functions are inlined into the kernels, and an edit to a row function
in *another* file would leave the kernels' cached machine code stale (numba's "Notes on
Caching" list this as a known limitation; checked with numba 0.68: a kernel inlining a
function from a second file kept returning the old result after that file changed). In
one file any edit invalidates every kernel's cache. That is why this module is the one
exception to the ~400-line limit, and why its constants (row indices of the stacked
state fields, the DNN tracker's constants) are defined here rather than imported: a
global read by a kernel is frozen into its cached code.

Compiled on first use, about 20 s, then cached (``cache=True``: numba keeps the
machine code next to this file, in ``NUMBA_CACHE_DIR`` when set, or in a per-user
cache when the package directory is read-only).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX_M1 = np.uint64(0xBF58476D1CE4E5B9)
MIX_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_S11 = np.uint64(11)
_TO_UNIT = 1.0 / float(1 << 53)

LOG_BUDGET_CENTER = float(np.log(150.0))  # budget feature: log(budget / 150)
# the DNN tracker's constants (meaning in ``ecomsim.shoppers.behavior``, which re-exports them)
DNN_A_MIN = 0.3  # affinity below which an item counts as irrelevant
DNN_DECAY = 0.8  # per-step decay of the irrelevance / repeat averages
DNN_DRIFT = 0.2  # share of the way the session interest moves to clicked items
_JIT = {"cache": True, "nogil": True}
# row functions are inlined into the kernels: a call per row would pass (and reference-count) every array
_ROW = {"cache": True, "nogil": True, "inline": "always"}


# ================================================================== streams
@njit(**_ROW)
def mix64(x):
    """The splitmix64 finaliser of one uint64 (wrapping arithmetic)."""
    x = x ^ (x >> _S30)
    x = x * MIX_M1
    x = x ^ (x >> _S27)
    x = x * MIX_M2
    return x ^ (x >> _S31)


@njit(**_JIT)
def mix_keys(keys, out):
    """``out[i] = mix64(keys[i])`` (a stream's starting state from its key)."""
    for i in range(keys.shape[0]):
        out[i] = mix64(keys[i])


@njit(**_JIT)
def next_keys(key, counter, rows, out):
    """``out[i] = mix64(key[r] ^ mix64(counter[r] + GOLDEN))`` for ``r = rows[i]`` (``SessionStreams.next_keys``)."""
    for i in range(rows.shape[0]):
        r = rows[i]
        out[i] = mix64(key[r] ^ mix64(counter[r] + GOLDEN))


@njit(**_ROW)
def _draw_row(base, counter, row, u, i, m):
    """``u[i, :m]`` = the next ``m`` uniforms of stream ``row``; advances its counter."""
    c = counter[row]
    b = base[row] + c * GOLDEN
    for j in range(m):
        u[i, j] = float(mix64(b + np.uint64(j) * GOLDEN) >> _S11) * _TO_UNIT
    counter[row] = c + np.uint64(m)


@njit(**_JIT)
def draw(base, counter, rows, m, u):
    """``u[i, :m]`` = the next ``m`` uniforms of stream ``rows[i]`` (pass ``arange`` for all streams)."""
    for i in range(rows.shape[0]):
        _draw_row(base, counter, rows[i], u, i, m)


# =============================================================== portraits
@njit(**_JIT)
def categorical(u, cdfs, sizes, out):
    """``out[i, c] = min(searchsorted(cdfs[c, :sizes[c]], u[i, c], side="right"), sizes[c] - 1)``."""
    for i in range(u.shape[0]):
        for c in range(u.shape[1]):
            out[i, c] = min(np.searchsorted(cdfs[c, : sizes[c]], u[i, c], side="right"), sizes[c] - 1)


# ================================================================ retrieval
@njit(**_ROW)
def next_stamp(mark):
    """A fresh stamp for the item marker ``mark`` (``num_items + 1`` int64; the last entry holds the counter).

    ``mark[item] == stamp`` then means "item seen under this stamp": membership tests in
    O(1) without clearing the array between sessions.
    """
    s = mark[-1] + 1
    mark[-1] = s
    return s


@njit(**_ROW)
def _retrieve_row(u, i, off, pool, row, popular_items, cdf, low, exact, n_pop, n_per, num_items, mark, out):
    """Candidates of one session into ``out[row]`` from ``u[i, off : off + 2 M + 2]`` (recipe in ``ecomsim.sim.retrieval``)."""
    m = out.shape[1]
    last = popular_items.shape[0] - 1
    stamp = next_stamp(mark)
    for j in range(m):
        if j < n_pop:
            # searchsorted(cdf, x, side="right") through the bucket table of ``retrieval.popular_buckets``;
            # written out here: as an inlined function (with one exit or two) the pass compiled to
            # markedly slower code
            x = u[i, off + j]
            b = np.int64(x * low.shape[0])
            if exact[b]:
                item = popular_items[min(low[b], last)]
            else:
                item = popular_items[min(np.searchsorted(cdf, x, side="right"), last)]
        elif j < n_pop + n_per:
            p = pool.shape[1]
            start = np.int64(u[i, off + m] * p)
            stride = 1 + np.int64(u[i, off + m + 1] * (p - 1))
            item = pool[row, (start + stride * (j - n_pop)) % p]
        else:
            item = np.int64(u[i, off + j] * num_items)
        # one pass of duplicate replacement: a later copy of an item becomes a random item
        if mark[item] == stamp:
            out[row, j] = np.int64(u[i, off + m + 2 + j] * num_items)
        else:
            mark[item] = stamp
            out[row, j] = item


@njit(**_JIT)
def retrieve(u, off, rows, session, retrieval, consts):
    """Candidates of sessions ``rows[i]`` into ``candidates[rows[i]]`` from ``u[i, off:]``."""
    counters, revenue, last_clicked, bought, recent, candidates, pool, uniforms = session
    popular_items, popular_cdf, popular_low, popular_exact, anchors, anchor_pools, mark = retrieval
    num_segments, num_channels, n_popular, n_personal, num_items, reward_kind, max_steps = consts
    for i in range(rows.shape[0]):
        _retrieve_row(u, i, off, pool, rows[i], popular_items, popular_cdf, popular_low, popular_exact, n_popular,
                      n_personal, num_items, mark, candidates)


# ===================================================================== step
# Rows of the stacked state fields (``ecomsim.sim.state``; tests/sim/test_state.py ties them):
# session counters (6, n): step_count, clicks, carts, purchases, impressions, no_click_run; the
# outcome's flags (4, n, k): shown, clicked, carted, purchased; ends (3, n): left, terminated,
# truncated; counts (3, n): clicks, carts, purchases; money (2, n): revenue, reward; the DNN
# tracker's aggregates (4, n): click_quality, irr_sum, irr_ewma, rep_ewma.
STEP, CLICKS, CARTS, PURCHASES, IMPRESSIONS, NO_CLICK_RUN = range(6)


@njit(**_ROW)
def _gather_row(candidates, slots, i, items, shown):
    k = slots.shape[1]
    for j in range(k):
        items[i, j] = candidates[i, slots[i, j]]
        first = True
        for q in range(j):
            if slots[i, q] == slots[i, j]:
                first = False
                break
        shown[i, j] = first


@njit(**_JIT)
def gather(skip, slots, session, outcome):
    """Items shown ``(n, k)`` and ``flags[0]`` (shown); a candidate picked twice in a slate is shown in its first
    slot only; sessions ``skip`` show nothing."""
    counters, revenue, last_clicked, bought, recent, candidates, pool, uniforms = session
    items, flags, counts, money, ends, stock_flags = outcome
    shown = flags[0]  # once: a slice taken per row costs more than the row's work
    for i in range(slots.shape[0]):
        if skip[i]:
            for j in range(slots.shape[1]):
                items[i, j], shown[i, j] = -1, False
        else:
            _gather_row(candidates, slots, i, items, shown)


@njit(**_ROW)
def _sample_row(base, counter, u, i, click, cart, purchase, leave, flags, ends):
    """Session ``i``'s funnel from its uniforms (every item in unlimited supply)."""
    k = flags.shape[2]
    _draw_row(base, counter, i, u, i, u.shape[1])
    any_click = False
    any_buy = False
    for j in range(k):
        c = flags[0, i, j] and u[i, j] < click[i, j]
        a = c and u[i, k + j] < cart[i, j]
        b = a and u[i, 2 * k + j] < purchase[i, j]
        flags[1, i, j], flags[2, i, j], flags[3, i, j] = c, a, b
        any_click |= c
        any_buy |= b
    level = 2 if any_buy else (1 if any_click else 0)
    ends[0, i] = u[i, 3 * k] < leave[i, level]


@njit(**_ROW)
def _sample_stocked_row(base, counter, u, i, click, cart, purchase, leave, items, flags, ends, stock, stock_params,
                        stock_flags):
    """:func:`_sample_row` with the store's stock (a function of its own: a stock branch inside the slot loop
    slowed the default step by a measurable share), the rules of ``ecomsim.sim.stock``: units are taken from
    ``stock`` as this row buys them (rows in order), an item with no unit left is clicked but neither carted nor
    bought (its draws give the lost sale), low stock lifts P(purchase | cart), and a click that met an empty
    shelf raises the leave hazard. The same uniforms as without stock."""
    k = flags.shape[2]
    _draw_row(base, counter, i, u, i, u.shape[1])
    any_click = False
    any_buy = False
    let_down = False
    for j in range(k):
        c = flags[0, i, j] and u[i, j] < click[i, j]
        it = items[i, j]
        units = stock[it]
        p = purchase[i, j]
        if units > 0 and units <= stock_params[0]:
            p = min(1.0, p * stock_params[1])
        a = c and u[i, k + j] < cart[i, j]
        b = a and u[i, 2 * k + j] < p
        out = units <= 0
        stock_flags[0, i, j] = flags[0, i, j] and out  # shown with no unit on hand
        stock_flags[1, i, j] = b and out  # the purchase the draws would have made: a lost sale
        if out:
            a, b = False, False
            let_down |= c
        elif b:
            stock[it] = units - 1
        flags[1, i, j], flags[2, i, j], flags[3, i, j] = c, a, b
        any_click |= c
        any_buy |= b
    level = 2 if any_buy else (1 if any_click else 0)
    h = leave[i, level]
    if let_down and not any_buy:
        h = 1.0 - (1.0 - h) * (1.0 - stock_params[2])
    ends[0, i] = u[i, 3 * k] < h


@njit(**_JIT)
def sample(skip, probs, session, rng, item_table, outcome):
    """Draw a step's uniforms and sample the funnel of every session but ``skip`` (no draws, nothing sampled)."""
    click, cart, purchase, leave = probs
    counters, revenue, last_clicked, bought, recent, candidates, pool, uniforms = session
    key, base, counter = rng
    price, log_price, quality, category, emb, features, stock, unit_profit, stock_params = item_table
    items, flags, counts, money, ends, stock_flags = outcome
    if stock.shape[0] > 0:
        for i in range(flags.shape[1]):
            if skip[i]:
                _skip_sample_row(i, flags, ends, stock_flags)
            else:
                _sample_stocked_row(base, counter, uniforms, i, click, cart, purchase, leave, items, flags, ends,
                                    stock, stock_params, stock_flags)
        return
    # without stock a loop of its own, as before inventory existed: one with the stock branch in it (even a
    # loop-invariant one) compiled to code 10x slower here (808 vs 64 us for 4096 sessions)
    for i in range(flags.shape[1]):
        if skip[i]:
            _skip_sample_row(i, flags, ends, stock_flags)
        else:
            _sample_row(base, counter, uniforms, i, click, cart, purchase, leave, flags, ends)


@njit(**_ROW)
def _skip_sample_row(i, flags, ends, stock_flags):
    """Nothing sampled for a skipped session: no click, cart, purchase, leave, nor stock event."""
    for j in range(flags.shape[2]):
        flags[1, i, j], flags[2, i, j], flags[3, i, j] = False, False, False
    for j in range(stock_flags.shape[2]):
        stock_flags[0, i, j], stock_flags[1, i, j] = False, False
    ends[0, i] = False


@njit(**_ROW)
def _advance_row(i, items, flags, price, ints, revenue, last_clicked, bought, category, recent, reward_kind, max_steps,
                 counts, money, ends, unit_profit):
    k = items.shape[1]
    nclick = 0
    ncart = 0
    nbuy = 0
    nshown = 0
    rev = 0.0
    for j in range(k):
        nshown += flags[0, i, j]
        nclick += flags[1, i, j]
        ncart += flags[2, i, j]
        nbuy += flags[3, i, j]
        term = price[items[i, j]] * flags[3, i, j]
        rev = term if j == 0 else rev + term
    counts[0, i], counts[1, i], counts[2, i] = nclick, ncart, nbuy
    ints[STEP, i] += 1
    ints[IMPRESSIONS, i] += nshown
    ints[CLICKS, i] += nclick
    ints[CARTS, i] += ncart
    ints[PURCHASES, i] += nbuy
    revenue[i] += rev
    money[0, i] = rev
    last_clicked[i] = nclick > 0
    ints[NO_CLICK_RUN, i] = 0 if nclick > 0 else ints[NO_CLICK_RUN, i] + 1
    for j in range(k):
        if flags[3, i, j]:
            bought[i, category[items[i, j]]] = True
    for q in range(recent.shape[1] - 1, k - 1, -1):
        recent[i, q] = recent[i, q - k]
    for j in range(k):
        recent[i, j] = items[i, j] if flags[0, i, j] else -1
    if reward_kind == 0:  # the index of ``EnvConfig.reward`` in ``config.REWARDS``: purchase, revenue, click, profit
        money[1, i] = float(nbuy)
    elif reward_kind == 1:
        money[1, i] = rev
    elif reward_kind == 2:
        money[1, i] = float(nclick)
    else:  # profit: each unit bought is worth its item's ``unit_profit`` (set by the store, inventory only)
        gain = 0.0
        for j in range(k):
            if flags[3, i, j]:
                gain += unit_profit[items[i, j]]
        money[1, i] = gain
    left = ends[0, i]
    ends[1, i] = left
    ends[2, i] = (not left) and ints[STEP, i] >= max_steps


@njit(**_JIT)
def advance(skip, session, item_table, retrieval, consts, outcome):
    """The session state after a step (the step's counts, revenue, reward and ends), then the next candidates
    from the step's uniforms; sessions ``skip`` are left as they are, with zero outcomes."""
    counters, revenue, last_clicked, bought, recent, candidates, pool, uniforms = session
    price, log_price, quality, category, emb, features, stock, unit_profit, stock_params = item_table
    popular_items, popular_cdf, popular_low, popular_exact, anchors, anchor_pools, mark = retrieval
    num_segments, num_channels, n_popular, n_personal, num_items, reward_kind, max_steps = consts
    items, flags, counts, money, ends, stock_flags = outcome
    n, k = items.shape
    for i in range(n):
        if skip[i]:
            counts[:, i], money[:, i], ends[:, i] = 0, 0.0, False
        else:
            _advance_row(i, items, flags, price, counters, revenue, last_clicked, bought, category, recent,
                         reward_kind, max_steps, counts, money, ends, unit_profit)
    for i in range(n):
        if not skip[i]:
            _retrieve_row(uniforms, i, 3 * k + 1, pool, i, popular_items, popular_cdf, popular_low, popular_exact,
                          n_popular, n_personal, num_items, mark, candidates)


# ============================================================== observation
@njit(**_ROW)
def _observe_row(r, o, o32, segment, channel, interest, budget, sensitivity, ints, last_clicked, bought, candidates,
                 recent, item_u32, emb, log_price, category, nseg, nch, max_steps, log_budget_center, mark, stock,
                 stock_params, unit_profit, price):
    """Session ``r``'s observation into the float32 row ``o`` (``o32``: the same row as uint32 words)."""
    d = interest.shape[1]
    nc = bought.shape[1]
    nf = item_u32.shape[1]
    stocked = stock.shape[0] > 0
    profit = stocked and stock_params[3] > 0.0
    # static features, then seen, affinity, log price over budget, category bought (and out / low stock, and the
    # unit profit share)
    nt = (nf + 7 if profit else nf + 6) if stocked else nf + 4
    for j in range(nseg + nch):
        o[j] = 0.0
    o[segment[r]] = 1.0
    o[nseg + channel[r]] = 1.0
    j = nseg + nch
    for q in range(d):
        o[j + q] = interest[r, q]
    lb = math.log(budget[r])
    o[j + d] = lb - log_budget_center
    o[j + d + 1] = sensitivity[r]
    j += d + 2
    o[j] = np.float32(ints[STEP, r]) / np.float32(max_steps)
    x = float(ints[CLICKS, r])
    o[j + 1] = x / (1.0 + x)
    x = float(ints[CARTS, r])
    o[j + 2] = x / (1.0 + x)
    x = float(ints[PURCHASES, r])
    o[j + 3] = x / (1.0 + x)
    x = float(ints[NO_CLICK_RUN, r])
    o[j + 4] = x / (1.0 + x)
    o[j + 5] = last_clicked[r]
    for q in range(nc):
        o[j + 6 + q] = bought[r, q]
    j += 6 + nc
    stamp = next_stamp(mark)
    for q in range(recent.shape[1]):
        if recent[r, q] >= 0:
            mark[recent[r, q]] = stamp
    for c in range(candidates.shape[1]):
        it = candidates[r, c]
        # slices indexed by range variables: no negative-index wraparound, so the copy vectorises
        src, dst, blk = item_u32[it], o32[j : j + nf], o[j + nf : j + nt]
        for q in range(nf):  # the static features, copied as 32-bit words
            dst[q] = src[q]
        blk[0] = mark[it] == stamp
        a = 0.0
        for q in range(d):
            a += emb[it, q] * interest[r, q]
        blk[1] = min(max(a, -1.0), 1.0)
        blk[2] = log_price[it] - lb
        blk[3] = bought[r, category[it]]
        j += nt
    if stocked:  # a loop of its own: a branch in the loop above keeps its copy from vectorising
        j -= nt * candidates.shape[1]
        low = stock_params[0]
        for c in range(candidates.shape[1]):
            units = stock[candidates[r, c]]
            o[j + nf + 4] = units <= 0
            o[j + nf + 5] = units > 0 and units <= low
            if profit:
                x = unit_profit[candidates[r, c]] / price[candidates[r, c]]
                o[j + nf + 6] = x / (1.0 + x)
            j += nt


@njit(**_JIT)
def observe(rows, session, portrait, item_table, retrieval, consts, out):
    """Observations of sessions ``rows`` into ``out`` ``(len(rows), obs_dim)`` (layout in ``ecomsim.sim.observation``)."""
    counters, revenue, last_clicked, bought, recent, candidates, pool, uniforms = session
    segment, channel, interest, price_sensitivity, budget, patience, intent = portrait
    price, log_price, quality, category, emb, features, stock, unit_profit, stock_params = item_table
    popular_items, popular_cdf, popular_low, popular_exact, anchors, anchor_pools, mark = retrieval
    num_segments, num_channels, n_popular, n_personal, num_items, reward_kind, max_steps = consts
    item_u32 = features.view(np.uint32)
    out32 = out.view(np.uint32)
    for i in range(rows.shape[0]):
        _observe_row(rows[i], out[i], out32[i], segment, channel, interest, budget, price_sensitivity, counters,
                     last_clicked, bought, candidates, recent, item_u32, emb, log_price, category, num_segments,
                     num_channels, max_steps, LOG_BUDGET_CENTER, mark, stock, stock_params, unit_profit, price)


# ====================================================== DNN shopper model
@njit(**_ROW)
def _affinity(emb, item, interest, r):
    a = 0.0
    for q in range(emb.shape[1]):
        a += emb[item, q] * interest[r, q]
    return a


@njit(**_ROW)
def _repeats(recent, r, item):
    c = 0
    for q in range(recent.shape[1]):
        c += recent[r, q] == item
    return c


@njit(**_ROW)
def _features_row(i, r, items, segment, channel, budget, sensitivity, ints, last_clicked, bought, recent, tstate,
                  interest, item_u32, emb, log_price, category, nseg, nch, a_min, log_budget_center,
                  user_out, item_out, item_out32):
    """Session ``r``'s DNN features into row ``i`` (``item_u32`` / ``item_out32``: uint32 views, for the copy)."""
    k = items.shape[1]
    nc = bought.shape[1]
    fs = item_u32.shape[1]
    u = user_out[i]
    for j in range(nseg + nch):
        u[j] = 0.0
    u[segment[r]] = 1.0
    u[nseg + channel[r]] = 1.0
    j = nseg + nch
    lb = math.log(budget[r])
    u[j] = lb - log_budget_center
    u[j + 1] = sensitivity[r]
    u[j + 2] = ints[STEP, r] / 10.0
    u[j + 3] = math.log1p(ints[CLICKS, r])
    u[j + 4] = math.log1p(ints[CARTS, r])
    u[j + 5] = ints[PURCHASES, r]
    u[j + 6] = ints[NO_CLICK_RUN, r] / 10.0
    u[j + 7] = last_clicked[r]
    j += 8
    for q in range(nc):
        u[j + q] = bought[r, q]
    j += nc
    u[j] = tstate[0, r]
    u[j + 1] = tstate[1, r] / 5.0
    u[j + 2] = tstate[2, r]
    u[j + 3] = tstate[3, r]
    s = sensitivity[r]
    for t in range(k):
        it = items[i, t]
        f = item_out[i, t]
        f32 = item_out32[i, t]
        src = item_u32[it]
        for q in range(fs):
            f32[q] = src[q]
        a = _affinity(emb, it, interest, r)
        ratio = log_price[it] - lb
        over = max(0.0, math.exp(ratio) - 1.0)
        f[fs] = a
        f[fs + 1] = max(0.0, a_min - a)
        f[fs + 2] = _repeats(recent, r, it)
        f[fs + 3] = bought[r, category[it]]
        f[fs + 4] = ratio
        f[fs + 5] = over
        f[fs + 6] = s * ratio
        f[fs + 7] = s * over


@njit(**_JIT)
def dnn_features(rows, items, session, portrait, item_table, tracker, consts, user_out, item_out):
    """The DNN's user ``(n, U)`` and item ``(n, k, I)`` features of showing ``items`` ``(n, k)`` to sessions
    ``rows`` (definitions in ``SessionTracker``)."""
    counters, revenue, last_clicked, bought, recent, candidates, pool, uniforms = session
    segment, channel, interest, price_sensitivity, budget, patience, intent = portrait
    price, log_price, quality, category, emb, features, stock, unit_profit, stock_params = item_table
    session_interest, aggregates, member = tracker
    num_segments, num_channels, n_popular, n_personal, num_items, reward_kind, max_steps = consts
    item_u32, item_out32 = features.view(np.uint32), item_out.view(np.uint32)
    for i in range(items.shape[0]):
        _features_row(i, rows[i], items, segment, channel, budget, price_sensitivity, counters, last_clicked, bought,
                      recent, aggregates, session_interest, item_u32, emb, log_price, category, num_segments,
                      num_channels, DNN_A_MIN, LOG_BUDGET_CENTER, user_out, item_out, item_out32)


@njit(**_ROW)
def _dnn_update_row(i, r, items, flags, recent, quality, emb, interest, tstate, a_min, decay, drift):
    """Session ``r``'s tracker after showing ``items[i]`` with outcome ``flags[:, i]``."""
    k = items.shape[1]
    d = emb.shape[1]
    nshown = 0
    irr_tot = 0.0
    rep_tot = 0.0
    nclick = 0
    cq = 0.0
    for j in range(k):
        it = items[i, j]
        if flags[0, i, j]:
            nshown += 1
            irr_tot += max(0.0, a_min - _affinity(emb, it, interest, r))
            rep_tot += _repeats(recent, r, it)
        if flags[1, i, j]:
            nclick += 1
            cq += quality[it]
    ns = float(max(nshown, 1))
    mean_irr = irr_tot / ns
    relief = 0.5 if nclick > 0 else 1.0
    tstate[0, r] += cq
    tstate[1, r] += mean_irr
    tstate[2, r] = (decay * tstate[2, r] + mean_irr) * relief
    tstate[3, r] = (decay * tstate[3, r] + rep_tot / ns) * relief
    if nclick > 0:
        norm = 0.0
        for q in range(d):
            e = 0.0
            for j in range(k):
                if flags[1, i, j]:
                    e += emb[items[i, j], q]
            norm += (interest[r, q] + drift * (e / nclick - interest[r, q])) ** 2
        norm = max(math.sqrt(norm), 1e-9)
        for q in range(d):
            e = 0.0
            for j in range(k):
                if flags[1, i, j]:
                    e += emb[items[i, j], q]
            interest[r, q] = (interest[r, q] + drift * (e / nclick - interest[r, q])) / norm


@njit(**_JIT)
def dnn_update(rows, items, flags, session, item_table, tracker):
    """The tracker of sessions ``rows`` after showing them ``items`` ``(n, k)`` with outcome ``flags`` ``(2, n, k)``
    (shown, clicked); call before ``advance``: repeats count the history before the step."""
    counters, revenue, last_clicked, bought, recent, candidates, pool, uniforms = session
    price, log_price, quality, category, emb, features, stock, unit_profit, stock_params = item_table
    session_interest, aggregates, member = tracker
    for i in range(items.shape[0]):
        _dnn_update_row(i, rows[i], items, flags, recent, quality, emb, session_interest, aggregates, DNN_A_MIN,
                        DNN_DECAY, DNN_DRIFT)


@njit(**_ROW)
def _dense(x, w, b, out, relu):
    """``out = x @ w + b`` (float32 accumulation), ReLU'd when ``relu``."""
    for o in range(w.shape[1]):
        out[o] = b[o]
    for j in range(w.shape[0]):
        xj = x[j]
        if xj != 0.0:
            for o in range(w.shape[1]):
                out[o] += xj * w[j, o]
    if relu:
        for o in range(w.shape[1]):
            out[o] = max(out[o], np.float32(0.0))


@njit(**_ROW)
def _expit(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@njit(**_ROW)
def _log_expit(x):
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


@njit(**_ROW)
def _w2(wflat, wmeta, e):
    o, r, c = wmeta[e, 0], wmeta[e, 1], wmeta[e, 2]
    return wflat[o : o + r * c].reshape((r, c))


@njit(**_ROW)
def _w1(wflat, wmeta, e):
    o, c = wmeta[e, 0], wmeta[e, 2]
    return wflat[o : o + c]


@njit(**_JIT)
def _unpack(wflat, wmeta):
    """The 15 weight arrays packed by ``FoldedNet`` (views of one network's row of ``wflat``; once per kernel call,
    not per row, except for a per-session ensemble member)."""
    return (_w2(wflat, wmeta, 0), _w1(wflat, wmeta, 1), _w2(wflat, wmeta, 2), _w1(wflat, wmeta, 3),
            _w2(wflat, wmeta, 4), _w2(wflat, wmeta, 5), _w1(wflat, wmeta, 6), _w2(wflat, wmeta, 7),
            _w1(wflat, wmeta, 8), _w2(wflat, wmeta, 9), _w1(wflat, wmeta, 10), _w2(wflat, wmeta, 11),
            _w1(wflat, wmeta, 12), _w2(wflat, wmeta, 13), _w1(wflat, wmeta, 14))


@njit(**_ROW)
def _forward_row(i, user, items, positions, channel, w, slope, click_a, click_b, scratch,
                 click, cart, purchase, leave):
    """The network on session ``i``'s features (``w``: the arrays of ``_unpack``, in ``FoldedNet`` order)."""
    u1, u1b, u2, u2b, j1u, j1i, j1b, j2, j2b, hd, hdb, l1, l1b, l2, l2b = w
    k = items.shape[1]
    h = u2.shape[1]
    hu1, hu, zu, z1 = scratch[0], scratch[1], scratch[2], scratch[3]
    z, zsum, heads, lv1, lv = scratch[4], scratch[5], scratch[6], scratch[7], scratch[8]
    lin = scratch[9]
    _dense(user[i], u1, u1b, hu1, True)
    _dense(hu1, u2, u2b, hu, True)
    _dense(hu, j1u, j1b, zu, False)
    for o in range(j2.shape[1]):
        zsum[o] = 0.0
    sl = slope[channel[i]]
    for t in range(k):
        _dense(items[i, t], j1i, zu, z1, True)
        _dense(z1, j2, j2b, z, True)
        for o in range(j2.shape[1]):
            zsum[o] += z[o]
        _dense(z, hd, hdb, heads, False)
        log_p = _log_expit(float(heads[0])) - sl * math.log1p(positions[t])
        p = min(math.exp(log_p), 1.0 - 1e-7)
        click[i, t] = _expit(click_a * (log_p - math.log1p(-p)) + click_b)
        cart[i, t] = _expit(float(heads[1]))
        purchase[i, t] = _expit(float(heads[2]))
    for o in range(h):
        lin[o] = hu[o]
    for o in range(j2.shape[1]):
        lin[h + o] = zsum[o] / k
    _dense(lin, l1, l1b, lv1, True)
    _dense(lv1, l2, l2b, lv, False)
    for o in range(l2.shape[1]):
        leave[i, o] = _expit(float(lv[o]))


@njit(**_JIT)
def forward_scratch(wmeta):
    """Work rows for ``_forward_row``: wide enough for every layer's input and output."""
    return np.empty((10, max(wmeta[:, 1].max(), wmeta[:, 2].max())), dtype=np.float32)


@njit(**_JIT)
def dnn_forward(user, items, positions, channel, weights, member, probs):
    """The behaviour network on feature arrays, one session at a time, into ``probs`` (click, cart, purchase
    ``(n, k)``, leave ``(n, 3)``); ``weights``: ``FoldedNet.weights`` (``K`` stacked networks); ``member``
    ``(n,)`` the network of each row, or empty: network 0 for every row."""
    wflat, wmeta, slope, click_a, click_b = weights
    click, cart, purchase, leave = probs
    scratch = forward_scratch(wmeta)
    w = _unpack(wflat[0], wmeta)
    s0, a0, b0 = slope[0], click_a[0], click_b[0]
    for i in range(items.shape[0]):
        wm, sm, am, bm = w, s0, a0, b0
        if member.shape[0] != 0:
            m = member[i]
            wm, sm, am, bm = _unpack(wflat[m], wmeta), slope[m], click_a[m], click_b[m]
        _forward_row(i, user, items, positions, channel, wm, sm, am, bm, scratch, click, cart, purchase, leave)


@njit(**_ROW)
def _pre_row(i, skip, slots, candidates, segment, channel, budget, sensitivity, ints, last_clicked, bought, recent,
             tstate, session_interest, item_u32, emb, log_price, category, nseg, nch, items, flags, user, itemf,
             itemf32):
    """Session ``i`` before the forward: the items shown and their DNN features (none shown, zero features,
    when ``skip[i]``)."""
    if skip[i]:  # one exit: an inlined function that returns early compiles to slower code
        items[i, :] = -1
        flags[:, i, :] = False
        user[i, :] = 0.0
        itemf[i, :, :] = 0.0
    else:
        _gather_row(candidates, slots, i, items, flags[0])
        _features_row(i, i, items, segment, channel, budget, sensitivity, ints, last_clicked, bought, recent,
                      tstate, session_interest, item_u32, emb, log_price, category, nseg, nch, DNN_A_MIN,
                      LOG_BUDGET_CENTER, user, itemf, itemf32)


# A DNN step is ``dnn_pre`` (all sessions), the forward (torch, any device), ``dnn_post``
# (all sessions); or, for small batches on CPU, ``dnn_step``: the three in one call.
# ``skip`` (n,) bool: sessions restarted just before the step (NEXT_STEP autoreset): not
# stepped (no draws, no state change; nothing shown, zero counts, money and ends), only observed.
@njit(**_JIT)
def dnn_pre(skip, slots, session, portrait, item_table, tracker, consts, outcome, user, itemf):
    """The items shown ``(n, k)`` (and ``flags[0]``, shown) and the DNN's user and item features."""
    counters, revenue, last_clicked, bought, recent, candidates, pool, uniforms = session
    segment, channel, interest, price_sensitivity, budget, patience, intent = portrait
    price, log_price, quality, category, emb, features, stock, unit_profit, stock_params = item_table
    session_interest, aggregates, member = tracker
    num_segments, num_channels, n_popular, n_personal, num_items, reward_kind, max_steps = consts
    items, flags, counts, money, ends, stock_flags = outcome
    item_u32, itemf32 = features.view(np.uint32), itemf.view(np.uint32)
    for i in range(slots.shape[0]):
        _pre_row(i, skip, slots, candidates, segment, channel, budget, price_sensitivity, counters, last_clicked,
                 bought, recent, aggregates, session_interest, item_u32, emb, log_price, category, num_segments,
                 num_channels, items, flags, user, itemf, itemf32)


@njit(**_JIT)
def dnn_post(skip, probs, session, portrait, rng, item_table, retrieval, tracker, consts, outcome, obs):
    """Outcomes from the forward's probabilities, the new session state, candidates and observations.

    Four passes over the sessions (outcomes, state, retrieval, observation): each row
    still depends on its own session only (with stock, the rows take units in row order in
    the first pass), and short loops compile to faster code than one long one.
    """
    click, cart, purchase, leave = probs
    counters, revenue, last_clicked, bought, recent, candidates, pool, uniforms = session
    segment, channel, interest, price_sensitivity, budget, patience, intent = portrait
    key, base, counter = rng
    price, log_price, quality, category, emb, features, stock, unit_profit, stock_params = item_table
    popular_items, popular_cdf, popular_low, popular_exact, anchors, anchor_pools, mark = retrieval
    session_interest, aggregates, member = tracker
    num_segments, num_channels, n_popular, n_personal, num_items, reward_kind, max_steps = consts
    items, flags, counts, money, ends, stock_flags = outcome
    n, k = items.shape
    # the outcomes in a pass of their own, without stock in a loop with no stock branch (as ``sample``)
    if stock.shape[0] > 0:
        for i in range(n):
            if not skip[i]:
                _sample_stocked_row(base, counter, uniforms, i, click, cart, purchase, leave, items, flags, ends,
                                    stock, stock_params, stock_flags)
    else:
        for i in range(n):
            if not skip[i]:
                _sample_row(base, counter, uniforms, i, click, cart, purchase, leave, flags, ends)
    for i in range(n):
        if skip[i]:
            _skip_sample_row(i, flags, ends, stock_flags)
            counts[:, i], money[:, i], ends[:, i] = 0, 0.0, False
            continue
        _dnn_update_row(i, i, items, flags, recent, quality, emb, session_interest, aggregates, DNN_A_MIN, DNN_DECAY,
                        DNN_DRIFT)
        _advance_row(i, items, flags, price, counters, revenue, last_clicked, bought, category, recent, reward_kind,
                     max_steps, counts, money, ends, unit_profit)
    for i in range(n):
        if skip[i]:
            continue
        _retrieve_row(uniforms, i, 3 * k + 1, pool, i, popular_items, popular_cdf, popular_low, popular_exact,
                      n_popular, n_personal, num_items, mark, candidates)
    item_u32, obs32 = features.view(np.uint32), obs.view(np.uint32)
    for i in range(n):
        _observe_row(i, obs[i], obs32[i], segment, channel, interest, budget, price_sensitivity, counters,
                     last_clicked, bought, candidates, recent, item_u32, emb, log_price, category, num_segments,
                     num_channels, max_steps, LOG_BUDGET_CENTER, mark, stock, stock_params, unit_profit, price)


@njit(**_JIT)
def dnn_step(skip, slots, session, portrait, rng, item_table, retrieval, tracker, weights, positions, consts,
             outcome, obs):
    """``dnn_pre`` and the compiled forward session by session, then ``dnn_post``: one call for a whole step."""
    counters, revenue, last_clicked, bought, recent, candidates, pool, uniforms = session
    segment, channel, interest, price_sensitivity, budget, patience, intent = portrait
    price, log_price, quality, category, emb, features, stock, unit_profit, stock_params = item_table
    session_interest, aggregates, member = tracker
    wflat, wmeta, slope, click_a, click_b = weights
    num_segments, num_channels, n_popular, n_personal, num_items, reward_kind, max_steps = consts
    items, flags, counts, money, ends, stock_flags = outcome
    n, k = slots.shape
    scratch = forward_scratch(wmeta)
    w = _unpack(wflat[0], wmeta)
    s0, a0, b0 = slope[0], click_a[0], click_b[0]
    user = np.empty((n, wmeta[0, 1]), dtype=np.float32)
    itemf = np.empty((n, k, wmeta[5, 1]), dtype=np.float32)
    click, cart, purchase = np.empty((n, k)), np.empty((n, k)), np.empty((n, k))
    leave = np.empty((n, 3))
    item_u32, itemf32 = features.view(np.uint32), itemf.view(np.uint32)
    for i in range(n):
        _pre_row(i, skip, slots, candidates, segment, channel, budget, price_sensitivity, counters, last_clicked,
                 bought, recent, aggregates, session_interest, item_u32, emb, log_price, category, num_segments,
                 num_channels, items, flags, user, itemf, itemf32)
        if skip[i]:
            continue
        wm, sm, am, bm = w, s0, a0, b0  # one network: the tracker's member field is empty
        if member.shape[0] != 0:  # the session's own member of a stacked ensemble (shopper_sampling="per_session")
            m = member[i]
            wm, sm, am, bm = _unpack(wflat[m], wmeta), slope[m], click_a[m], click_b[m]
        _forward_row(i, user, itemf, positions, channel, wm, sm, am, bm, scratch, click, cart, purchase, leave)
    dnn_post(skip, (click, cart, purchase, leave), session, portrait, rng, item_table, retrieval, tracker, consts,
             outcome, obs)
