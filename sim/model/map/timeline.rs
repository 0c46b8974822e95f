//! The cycle-level timeline of a network (docs/model.md §2.11): every subarray run of every layer scheduled in order on the chips' subarrays, controllers, global buses and chip-link ports, layers overlapping where their inputs allow.
//!
//! A subarray run (one program on one subarray's lanes) is three phases:
//!
//! 1. its operands cross the global bus of the run's chip (`⌈bits ÷ width⌉` cycles of bus
//!    occupancy, then the bus latency) and, on several chips, the share
//!    [`Hw::link_bits`] crosses the chip's link port at the same time (occupancy, then the
//!    link latency). The transfer starts no earlier than it must to meet the subarray when
//!    that becomes free, so nothing is buffered for longer than the bus latency;
//! 2. its row writes and
//! 3. its program, holding the subarray for the run's cycles (the broadcast step
//!    latencies, `timing::broadcast_cycles`, plus its row writes).
//!
//! A run that carries its program's commands (the first block of a broadcast, or of each
//! wave) also holds its chip's controller for `⌈commands ÷ issue slots⌉` cycles from its
//! start: another program's first run on that chip starts when the controller is free.
//! The broadcast's other blocks run on that issue, in lockstep: none starts before the
//! program's last issue did.
//!
//! Which subarray: a new run takes the one free soonest (the lowest index on a tie, so
//! runs fill one chip before the next); a later wave of a layout with copies runs on the
//! subarray its block's wave 0 took (its resident weights are there); an in-place ReLU,
//! ReLU6 or Sign runs on its producer's subarrays, where the values are.
//!
//! Order: layers in the network's (topological) order, a layer's passes one after another
//! (a reducer needs every partial sum), a pass's runs in lane order (wave by wave, for a
//! layout with copies). Every resource is reserved in that order and never backfills an
//! earlier gap, so the schedule is a function of the runs alone: an analytical run, which
//! prices equal blocks once and repeats them here, and a functional run, which has each
//! block, give the same timeline (tested). A layer starts when the layers it reads have
//! ended; a layer that reads none of the layers still running (a shortcut beside a
//! residual branch) overlaps them on the subarrays and buses they leave free.

use super::*;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// Where each layer ran on the network's timeline, and what the shared resources did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Cycles from the start to the end of the last run.
    pub cycles: u64,
    /// Per layer: the cycle its first run started and the cycle its last run ended (both
    /// the cycle its inputs were ready, for a layer with no runs).
    pub spans: Vec<(u64, u64)>,
    /// Cycles the resources were held, summed over their instances.
    pub busy: Busy,
}

/// Busy cycles of the timeline's resources, summed over the chips (and subarrays).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Busy {
    /// Σ over subarrays of the cycles they held a run.
    pub subarray_cycles: u64,
    /// Σ over the chips' global buses of their occupied cycles.
    pub bus_cycles: u64,
    /// Σ over the chips' link ports of their occupied cycles.
    pub link_cycles: u64,
    /// Σ over the chips' controllers of their issuing cycles.
    pub issue_cycles: u64,
}

impl Timeline {
    /// A layer's cycles on the timeline: from its first run's start to its last run's end.
    pub fn layer_cycles(&self, i: usize) -> u64 {
        self.spans.get(i).map_or(0, |&(s, e)| e - s)
    }
}

/// The scheduler: per-subarray and per-chip next-free cycles.
pub(crate) struct Scheduler<'h> {
    hw: &'h Hw,
    per_chip: u64,
    /// Subarrays on all the chips.
    total: u64,
    /// Next free cycle of each subarray a run has taken so far: subarrays `0..free.len()`
    /// (runs take fresh subarrays in index order; the rest are free from cycle 0), so the
    /// work does not grow with the chips a run does not use.
    free: Vec<u64>,
    /// (free cycle, subarray), lazily: an entry whose cycle is not the subarray's is stale.
    soonest: BinaryHeap<Reverse<(u64, u32)>>,
    /// Per chip: next free cycle of its global bus, link port and controller.
    bus: Vec<u64>,
    link: Vec<u64>,
    issue: Vec<u64>,
    busy: Busy,
    /// Per layer: its span and the subarrays its last pass ran on (for in-place consumers).
    layers: Vec<((u64, u64), Vec<u32>)>,
}

/// A pass being scheduled: when it may start, its span so far, the subarrays it used, its
/// run count (for in-place runs on their producer's subarrays, in turn).
struct Pass<'p> {
    from: u64,
    start: u64,
    end: u64,
    /// The subarrays it used, a bit each.
    seen: Vec<u64>,
    k: usize,
    producer_subs: &'p [u32],
    /// Per program, the cycle its last issued broadcast started: a block that runs on
    /// that issue starts no earlier (the blocks of a broadcast run in lockstep).
    issued: BTreeMap<usize, u64>,
}

/// The resources' next-free cycles, the programs' last issues and the busy totals at the
/// start of a round.
struct Snap {
    free: Vec<u64>,
    chips: Vec<[u64; 3]>,
    issued: BTreeMap<usize, u64>,
    busy: Busy,
}

/// One subarray run's timing needs.
#[derive(Debug, Clone, Copy)]
struct RunNeeds {
    cycles: u64,
    bits: u64,
    commands: u64,
}

impl<'h> Scheduler<'h> {
    /// An idle machine: `hw`'s chips.
    pub(crate) fn new(hw: &'h Hw) -> Scheduler<'h> {
        let chips = usize::try_from(hw.chips).unwrap_or(1).max(1);
        Scheduler {
            hw,
            per_chip: hw.org.subarrays().max(1),
            total: hw.subarrays().clamp(1, u64::from(u32::MAX)),
            free: Vec::new(),
            soonest: BinaryHeap::new(),
            bus: vec![0; chips],
            link: vec![0; chips],
            issue: vec![0; chips],
            busy: Busy::default(),
            layers: Vec::new(),
        }
    }

    /// Schedules the next layer of the network: `costs` its streams, `inputs` the layers it
    /// reads (earlier ones). Returns its span.
    pub(crate) fn layer(&mut self, costs: &[StreamCost], inputs: &[usize]) -> (u64, u64) {
        let ready = inputs
            .iter()
            .filter_map(|&i| self.layers.get(i))
            .map(|l| l.0.1)
            .max()
            .unwrap_or(0);
        let producer = inputs.first().and_then(|&i| self.layers.get(i));
        let producer_subs = producer.map(|l| l.1.clone()).unwrap_or_default();
        let (span, subs) = self.schedule(costs, ready, &producer_subs);
        self.layers.push((span, subs));
        span
    }

    /// The timeline so far.
    pub(crate) fn timeline(&self) -> Timeline {
        Timeline {
            cycles: self.layers.iter().map(|l| l.0.1).max().unwrap_or(0),
            spans: self.layers.iter().map(|l| l.0).collect(),
            busy: self.busy,
        }
    }

    /// Schedules a layer's passes from `ready`: its span and its last pass's subarrays.
    ///
    /// Equal runs repeat a pattern: once a round of them (every subarray once, or every
    /// pinned subarray once: a wave) leaves every resource it touched later by one Δ than
    /// the round before, with the pass's start no longer binding, each further round would
    /// too, so the rounds up to the last are added in one step ([`Scheduler::jump`]). The
    /// result is the run-by-run schedule's (tested), in time that does not grow with the
    /// images.
    fn schedule(
        &mut self,
        costs: &[StreamCost],
        ready: u64,
        producer_subs: &[u32],
    ) -> ((u64, u64), Vec<u32>) {
        let passes = costs.iter().map(|c| c.pass + 1).max().unwrap_or(0);
        let (mut start, mut end) = (u64::MAX, ready);
        let mut subs = Vec::new();
        for pass in 0..passes {
            let mut ps = Pass {
                from: end,
                start,
                end,
                seen: Vec::new(),
                k: 0,
                producer_subs,
                issued: BTreeMap::new(),
            };
            let in_pass = costs.iter().filter(|c| c.pass == pass && c.runs > 0);
            if costs
                .iter()
                .any(|c| c.pass == pass && c.place.wave_lanes > 0)
            {
                self.waves(in_pass, &mut ps);
            } else {
                for c in in_pass {
                    self.repeats(c, &mut ps);
                }
            }
            start = ps.start;
            end = ps.end;
            subs = ps
                .seen
                .iter()
                .enumerate()
                .flat_map(|(w, &bits)| {
                    (0..64u32)
                        .filter(move |b| bits >> b & 1 == 1)
                        .map(move |b| w as u32 * 64 + b)
                })
                .collect();
        }
        if start == u64::MAX {
            start = ready;
        }
        ((start, end), subs)
    }

    /// One stream's `runs × repeat` runs, each on the subarray free soonest (or, in place,
    /// on its producer's next subarray), equal rounds added at once.
    fn repeats(&mut self, c: &StreamCost, ps: &mut Pass<'_>) {
        let total = c.runs * c.repeat;
        // Whether a run takes the subarray free soonest (else its producer's next one).
        let any = !c.in_place || ps.producer_subs.is_empty();
        let base = if any {
            self.total
        } else {
            ps.producer_subs.len() as u64
        };
        let round = base * c.runs;
        let floor = ps.from + self.lead(c.loaded_bits / c.runs.max(1));
        let mut snap: Option<Snap> = None;
        let mut r = 0;
        while r < total {
            if r % round == 0 {
                let left = total - r;
                // (A snapshot is taken with two rounds or more left, so one is left now.)
                if let Some(s) = snap.take()
                    && let Some(d) = self.period(&s, ps, floor, any)
                {
                    let m = left / round - 1;
                    self.jump(&s, ps, d, m);
                    r += m * round;
                    ps.k += (m * round) as usize;
                }
                if total - r >= 2 * round {
                    snap = Some(self.snap(ps));
                }
            }
            self.place(c, r % c.runs == 0, None, ps);
            r += 1;
        }
    }

    /// One run of `c` (carrying its commands when `first`) on subarray `pinned`, or the
    /// subarray its rule gives.
    fn place(
        &mut self,
        c: &StreamCost,
        first: bool,
        pinned: Option<u32>,
        ps: &mut Pass<'_>,
    ) -> u32 {
        let sub = pinned
            .or_else(|| {
                (c.in_place && !ps.producer_subs.is_empty())
                    .then(|| ps.producer_subs[ps.k % ps.producer_subs.len()])
            })
            .unwrap_or_else(|| self.soonest_free());
        ps.k += 1;
        let commands = if first { c.commands } else { 0 };
        let needs = RunNeeds {
            cycles: c.cycles_per_run,
            bits: c.loaded_bits / c.runs.max(1),
            // The runs of one stream after its first share its issue.
            commands,
        };
        let program = c.place.program;
        let ready = match ps.issued.get(&program) {
            Some(&t) if commands == 0 => t.max(ps.from),
            _ => ps.from,
        };
        let (s0, started, e0) = self.run(ready, needs, sub);
        if commands > 0 {
            ps.issued.insert(program, started);
        }
        ps.start = ps.start.min(s0);
        ps.end = ps.end.max(e0);
        let word = sub as usize / 64;
        if ps.seen.len() <= word {
            ps.seen.resize(word + 1, 0);
        }
        ps.seen[word] |= 1 << (sub % 64);
        sub
    }

    /// A pass of a layout with copies, wave by wave and, in a wave, block by block: each
    /// stream covers `repeat` consecutive waves of one block (analytical) or one (wave,
    /// block) (functional); a later wave runs on the subarray its block's wave 0 took.
    /// Equal waves are added at once, as equal rounds are in [`Scheduler::repeats`].
    fn waves<'c>(&mut self, costs: impl Iterator<Item = &'c StreamCost>, ps: &mut Pass<'_>) {
        let per = self.hw.org.params.lanes_per_subarray as usize;
        // (first wave, waves, block, stream)
        let mut entries: Vec<(usize, usize, usize, &StreamCost)> = costs
            .map(|c| {
                let w = c.place.wave_lanes.max(1);
                let start = c.place.lanes.start;
                (start / w, c.repeat as usize, start % w / per.max(1), c)
            })
            .collect();
        entries.sort_by_key(|e| (e.0, e.2));
        let mut at: BTreeMap<(usize, usize), u32> = BTreeMap::new();
        let mut active: Vec<(usize, usize, usize, &StreamCost)> = Vec::new();
        let mut next = 0;
        let mut wave = entries.first().map_or(0, |e| e.0);
        let mut snap: Option<Snap> = None;
        while next < entries.len() || !active.is_empty() {
            let before = active.len();
            active.retain(|e| e.0 + e.1 > wave);
            let mut changed = active.len() != before;
            while next < entries.len() && entries[next].0 == wave {
                active.push(entries[next]);
                next += 1;
                changed = true;
            }
            if changed {
                active.sort_by_key(|e| e.2);
                snap = None;
            }
            // Waves on pinned subarrays repeat until the set of blocks changes.
            if !active.is_empty() && active.iter().all(|e| !e.3.new_subarrays) {
                let until = active
                    .iter()
                    .map(|e| e.0 + e.1)
                    .chain(entries.get(next).map(|e| e.0))
                    .min()
                    .unwrap_or(wave);
                let left = until.saturating_sub(wave) as u64;
                if let Some(s) = snap.take() {
                    let lead = active
                        .iter()
                        .map(|e| self.lead(e.3.loaded_bits / e.3.runs.max(1)))
                        .max()
                        .unwrap_or(0);
                    if let Some(d) = self.period(&s, ps, ps.from + lead, false) {
                        let m = left - 1;
                        self.jump(&s, ps, d, m);
                        wave += m as usize;
                    }
                }
                if until.saturating_sub(wave) >= 2 {
                    snap = Some(self.snap(ps));
                }
            }
            for e in &active {
                let c = e.3;
                let key = (c.place.program, e.2);
                let pinned = if c.new_subarrays {
                    None
                } else {
                    at.get(&key).copied()
                };
                let sub = self.place(c, true, pinned, ps);
                at.entry(key).or_insert(sub);
            }
            wave += 1;
            if active.iter().all(|e| e.0 + e.1 <= wave) && next < entries.len() {
                wave = wave.max(entries[next].0);
            }
        }
    }

    /// For `bits` moved onto a run's chip: the cycles they occupy its global bus and its
    /// link port, and from the first move to their arrival (the longer of the two paths,
    /// each with its latency).
    fn moves(&self, bits: u64) -> (u64, u64, u64) {
        let hw = self.hw;
        let bus = &hw.org.params.global_bus;
        let bus_occupied = bits.div_ceil(u64::from(bus.width_bits.max(1)));
        let bus_lead = if bits > 0 {
            bus_occupied + u64::from(bus.latency_cycles)
        } else {
            0
        };
        let link_bits = hw.link_bits(bits);
        let (link_occupied, link_lead) = match hw.chip_link() {
            Some(l) if link_bits > 0 => {
                let all = hw.org.link_cycles(&l, link_bits);
                (all - u64::from(l.latency_cycles).min(all), all)
            }
            _ => (0, 0),
        };
        (bus_occupied, link_occupied, bus_lead.max(link_lead))
    }

    /// Cycles from a run's first move to its operands' arrival.
    fn lead(&self, bits: u64) -> u64 {
        self.moves(bits).2
    }

    /// The state, to compare a round against.
    fn snap(&self, ps: &Pass<'_>) -> Snap {
        Snap {
            issued: ps.issued.clone(),
            free: self.free.clone(),
            chips: (0..self.bus.len())
                .map(|c| [self.bus[c], self.link[c], self.issue[c]])
                .collect(),
            busy: self.busy,
        }
    }

    /// Δ when every resource the round since `s` touched ended later by one Δ > 0 than at
    /// `s` (the others unchanged), every subarray it touched was free at `s` no earlier than
    /// `floor` (so the pass's start no longer bound it) and, when `all`, it touched every
    /// subarray (a run on the subarray free soonest would otherwise take an untouched one).
    fn period(&self, s: &Snap, ps: &Pass<'_>, floor: u64, all: bool) -> Option<u64> {
        let chips = |c: usize| [self.bus[c], self.link[c], self.issue[c]];
        // Runs that take no time and move nothing leave the state as it was: so would
        // every further round.
        if self.free == s.free
            && (0..self.bus.len()).all(|c| chips(c) == s.chips[c])
            && ps.issued == s.issued
        {
            return Some(0);
        }
        let mut delta = None;
        let mut same = |now: u64, then: u64| -> bool {
            if now == then {
                return true;
            }
            let d = now.checked_sub(then).filter(|&d| d > 0);
            match (delta, d) {
                (_, None) => false,
                (None, Some(d)) => {
                    delta = Some(d);
                    true
                }
                (Some(x), Some(d)) => x == d,
            }
        };
        // A round that took a fresh subarray changed what the next one finds; with `all`,
        // every subarray must have been taken and moved on.
        if self.free.len() != s.free.len() || (all && (self.free.len() as u64) < self.total) {
            return None;
        }
        for (&now, &then) in self.free.iter().zip(&s.free) {
            if now == then {
                if all {
                    return None;
                }
                continue;
            }
            if then < floor || !same(now, then) {
                return None;
            }
        }
        for (c, then) in s.chips.iter().enumerate() {
            let now = chips(c);
            if !(0..3).all(|i| same(now[i], then[i])) {
                return None;
            }
        }
        if ps.issued.len() != s.issued.len()
            || !ps
                .issued
                .iter()
                .zip(&s.issued)
                .all(|((p, &now), (q, &then))| p == q && same(now, then))
        {
            return None;
        }
        delta
    }

    /// Adds `m` more rounds like the one since `s`, each `delta` later than the one before.
    fn jump(&mut self, s: &Snap, ps: &mut Pass<'_>, delta: u64, m: u64) {
        if m == 0 || delta == 0 {
            // (Rounds that change nothing add no busy cycles either.)
            return;
        }
        let shift = delta * m;
        for (now, &then) in self.free.iter_mut().zip(&s.free) {
            if *now != then {
                *now += shift;
            }
        }
        for (c, then) in s.chips.iter().enumerate() {
            for (now, &then) in [&mut self.bus[c], &mut self.link[c], &mut self.issue[c]]
                .into_iter()
                .zip(then)
            {
                if *now != then {
                    *now += shift;
                }
            }
        }
        for (now, &then) in ps.issued.values_mut().zip(s.issued.values()) {
            if *now != then {
                *now += shift;
            }
        }
        let b = &mut self.busy;
        b.subarray_cycles += m * (b.subarray_cycles - s.busy.subarray_cycles);
        b.bus_cycles += m * (b.bus_cycles - s.busy.bus_cycles);
        b.link_cycles += m * (b.link_cycles - s.busy.link_cycles);
        b.issue_cycles += m * (b.issue_cycles - s.busy.issue_cycles);
        self.rebuild();
    }

    /// The heap of free cycles afresh: one entry per subarray.
    fn rebuild(&mut self) {
        self.soonest = self
            .free
            .iter()
            .enumerate()
            .map(|(i, &t)| Reverse((t, i as u32)))
            .collect();
    }

    /// The subarray free soonest (the lowest index on a tie): off the heap of the taken
    /// ones, or the next fresh one (free from cycle 0, above every taken index).
    fn soonest_free(&mut self) -> u32 {
        let fresh = (self.free.len() as u64) < self.total;
        while let Some(&Reverse((t, i))) = self.soonest.peek() {
            if self.free[i as usize] != t {
                self.soonest.pop();
                continue;
            }
            if fresh && t > 0 {
                break;
            }
            self.soonest.pop();
            return i;
        }
        if fresh {
            let i = self.free.len() as u32;
            self.free.push(0);
            return i;
        }
        // Every taken subarray keeps one current entry, so this is not reached; if it were,
        // the heap afresh gives the soonest.
        self.rebuild();
        self.soonest.pop().map_or(0, |Reverse((_, i))| i)
    }

    /// Schedules one run from `ready` on subarray `sub`: the start of its moves (of its
    /// program when it moves nothing), the start of its program, and its end.
    fn run(&mut self, ready: u64, r: RunNeeds, sub: u32) -> (u64, u64, u64) {
        let hw = self.hw;
        let chip = ((u64::from(sub) / self.per_chip) as usize).min(self.bus.len() - 1);
        let (bus_occupied, link_occupied, lead) = self.moves(r.bits);
        if self.free.len() <= sub as usize {
            self.free.resize(sub as usize + 1, 0);
        }
        let sub_free = self.free[sub as usize];
        let mut moved = ready.max(sub_free.saturating_sub(lead));
        if bus_occupied > 0 {
            moved = moved.max(self.bus[chip]);
        }
        if link_occupied > 0 {
            moved = moved.max(self.link[chip]);
        }
        let mut start = (moved + lead).max(sub_free).max(ready);
        if r.commands > 0 {
            let slots = u64::from(hw.org.params.issue_slots_per_cycle.max(1));
            let issuing = r.commands.div_ceil(slots);
            start = start.max(self.issue[chip]);
            self.issue[chip] = start + issuing;
            self.busy.issue_cycles += issuing;
        }
        if bus_occupied > 0 {
            self.bus[chip] = moved + bus_occupied;
            self.busy.bus_cycles += bus_occupied;
        }
        if link_occupied > 0 {
            self.link[chip] = moved + link_occupied;
            self.busy.link_cycles += link_occupied;
        }
        let end = start + r.cycles;
        self.free[sub as usize] = end;
        self.soonest.push(Reverse((end, sub)));
        // Pinned runs leave stale entries behind: keep the heap within a few per subarray.
        if self.soonest.len() > 4 * self.free.len() + 64 {
            self.rebuild();
        }
        self.busy.subarray_cycles += r.cycles;
        // The run begins with its moves, when it has any.
        (if lead > 0 { moved } else { start }, start, end)
    }
}

/// A layer's cycles alone on an idle machine: its passes in turn on the timeline.
pub(crate) fn layer_cycles(costs: &[StreamCost], hw: &Hw) -> u64 {
    let mut s = Scheduler::new(hw);
    let (start, end) = s.layer(costs, &[]);
    end - start.min(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::map::tests::hw;

    /// `repeat` equal runs of `cycles`, each moving `bits` over the bus and issuing
    /// `commands`, in pass `pass`.
    fn runs(cycles: u64, bits: u64, commands: u64, repeat: u64, pass: usize) -> StreamCost {
        StreamCost {
            runs: 1,
            cycles_per_run: cycles,
            loaded_bits: bits,
            commands,
            repeat,
            pass,
            new_subarrays: true,
            ..Default::default()
        }
    }

    #[test]
    fn equal_runs_fill_the_subarrays_then_queue() {
        let hw = hw();
        let s = hw.subarrays();
        // One run per subarray: all at once. One more: a second round on the subarray
        // free first (subarray 0).
        assert_eq!(layer_cycles(&[runs(100, 0, 0, s, 0)], &hw), 100);
        assert_eq!(layer_cycles(&[runs(100, 0, 0, s + 1, 0)], &hw), 200);
        // Analytical streams standing for several blocks and functional ones, a block
        // each, schedule alike.
        let each: Vec<StreamCost> = (0..s + 1).map(|_| runs(100, 0, 0, 1, 0)).collect();
        assert_eq!(layer_cycles(&each, &hw), 200);
        // A reducer pass starts when its slice pass has ended.
        let two = [runs(100, 0, 0, 4, 0), runs(30, 0, 0, 2, 1)];
        assert_eq!(layer_cycles(&two, &hw), 130);
    }

    #[test]
    fn the_bus_staggers_runs_and_the_controller_serializes_programs() {
        let hw = hw();
        let bus = hw.org.params.global_bus;
        let (w, lat) = (u64::from(bus.width_bits), u64::from(bus.latency_cycles));
        // Four runs each moving 10 bus words: run k's data arrive after k + 1 transfers
        // and the bus latency.
        let c = layer_cycles(&[runs(100, 10 * w, 0, 4, 0)], &hw);
        assert_eq!(
            c,
            4 * 10 + lat + 100,
            "the last run starts after 4 transfers"
        );
        // The layer begins with its first transfer.
        let mut s = Scheduler::new(&hw);
        s.layer(&[], &[]);
        let (start, end) = s.layer(&[runs(100, 10 * w, 0, 4, 0)], &[0]);
        assert_eq!((start, end), (0, 40 + lat + 100));
        // A second round on a subarray: its transfer starts no earlier than it must to
        // meet the subarray when it is free (here 1000 cycles on, the bus long idle).
        let ready = end;
        let n = hw.subarrays() + 1;
        let (_, end) = s.layer(&[runs(1000, w, 0, n, 0)], &[1]);
        assert_eq!(end - ready, (1 + lat + 1000) + 1000);
        assert_eq!(s.timeline().busy.bus_cycles, 4 * 10 + n);
        // Two programs, each run issuing 50 commands at one slot per cycle: the second
        // starts when the controller has issued the first's.
        let slots = u64::from(hw.org.params.issue_slots_per_cycle);
        let two = [runs(100, 0, 50, 1, 0), runs(100, 0, 50, 1, 0)];
        assert_eq!(layer_cycles(&two, &hw), 50_u64.div_ceil(slots) + 100);
        // A broadcast block (no commands of its own) runs beside its program's first.
        let shared = [runs(100, 0, 50, 1, 0), runs(100, 0, 0, 3, 0)];
        assert_eq!(layer_cycles(&shared, &hw), 100);
    }

    #[test]
    fn later_waves_run_on_the_subarray_of_their_block() {
        let hw = hw();
        let per = hw.org.params.lanes_per_subarray as usize;
        // Two blocks per wave, three waves: wave 0 takes two subarrays; each later wave's
        // block runs after the same block of the wave before, whatever else is free.
        let wave = 2 * per;
        let block = |w: usize, b: usize, repeat: u64| {
            let mut c = runs(100, 0, 0, repeat, 0);
            c.place.wave_lanes = wave;
            c.place.lanes = w * wave + b * per..w * wave + (b + 1) * per;
            c.new_subarrays = w == 0;
            c
        };
        let functional: Vec<StreamCost> = (0..3)
            .flat_map(|w| (0..2).map(move |b| block(w, b, 1)))
            .collect();
        // Analytical: wave 0's blocks, then each block's waves 1 and 2 as one stream.
        let analytical = [
            block(0, 0, 1),
            block(0, 1, 1),
            block(1, 0, 2),
            block(1, 1, 2),
        ];
        let mut f = Scheduler::new(&hw);
        f.layer(&functional, &[]);
        let mut a = Scheduler::new(&hw);
        a.layer(&analytical, &[]);
        assert_eq!(f.timeline(), a.timeline());
        assert_eq!(f.timeline().cycles, 300);
        assert_eq!(f.timeline().busy.subarray_cycles, 600);
        assert_eq!(f.layers[0].1, vec![0, 1], "two subarrays");
    }

    #[test]
    fn layers_wait_for_their_inputs_and_overlap_the_rest() {
        let hw = hw();
        let half = hw.subarrays() / 2;
        let mut s = Scheduler::new(&hw);
        s.layer(&[], &[]); // the input
        // Two layers that read only the input, each on half the subarrays: side by side.
        assert_eq!(s.layer(&[runs(100, 0, 0, half, 0)], &[0]), (0, 100));
        assert_eq!(s.layer(&[runs(70, 0, 0, half, 0)], &[0]), (0, 70));
        // One that reads both starts when the later has ended.
        assert_eq!(s.layer(&[runs(10, 0, 0, 1, 0)], &[1, 2]), (100, 110));
        // An in-place layer runs on its producer's subarrays.
        let mut relu = runs(5, 0, 0, 1, 0);
        relu.in_place = true;
        s.layer(&[relu], &[3]);
        assert_eq!(s.layers[4].1, s.layers[3].1);
        assert_eq!(s.timeline().cycles, 115);
        assert_eq!(s.timeline().layer_cycles(1), 100);
    }

    use proptest::prelude::*;

    /// The streams of a pass as an analytical run keeps them (a stream standing for many
    /// equal blocks) and as a functional run has them (a block each).
    fn both(c: &StreamCost) -> (Vec<StreamCost>, Vec<StreamCost>) {
        let one = StreamCost {
            repeat: 1,
            ..c.clone()
        };
        (vec![c.clone()], vec![one; c.repeat as usize])
    }

    /// Schedules, on `hw`, a producer of `n0` equal runs and then `layer` (reading it).
    fn schedule(hw: &Hw, n0: u64, layer: &[StreamCost]) -> Timeline {
        let mut s = Scheduler::new(hw);
        s.layer(&[], &[]);
        s.layer(&[runs(300, 0, 0, n0, 0)], &[0]);
        s.layer(layer, &[1]);
        s.timeline()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Equal rounds added at once give the run-by-run timeline: many equal runs on the
        /// subarrays free soonest, in place on a producer's subarrays, and waves pinned to
        /// their subarrays, on one chip or several.
        #[test]
        fn equal_rounds_added_at_once_are_the_run_by_run_timeline(
            cycles in 1u64..400, words in 0u64..40, commands in 0u64..60,
            n in 1u64..1200, n0 in 1u64..300, chips in 1u64..4, in_place in any::<bool>(),
            blocks in 1usize..5, waves in 1usize..40,
        ) {
            let hw = hw().with_chips(chips);
            let w = u64::from(hw.org.params.global_bus.width_bits);
            let mut c = runs(cycles, words * w, commands, n, 0);
            c.in_place = in_place;
            let (a, f) = both(&c);
            prop_assert_eq!(schedule(&hw, n0, &a), schedule(&hw, n0, &f));
            // Waves: `blocks` blocks per wave, wave 0 then waves 1.. as one stream per
            // block (analytical) or a stream per (wave, block) (functional).
            let per = hw.org.params.lanes_per_subarray as usize;
            let wave = blocks * per;
            let block = |wv: usize, b: usize, repeat: u64| {
                let mut c = runs(cycles, words * w, if b == 0 { commands } else { 0 }, repeat, 0);
                c.place.wave_lanes = wave;
                c.place.lanes = wv * wave + b * per..wv * wave + (b + 1) * per;
                c.new_subarrays = wv == 0;
                c
            };
            let mut a: Vec<StreamCost> = (0..blocks).map(|b| block(0, b, 1)).collect();
            if waves > 1 {
                a.extend((0..blocks).map(|b| block(1, b, waves as u64 - 1)));
            }
            let f: Vec<StreamCost> = (0..waves)
                .flat_map(|wv| (0..blocks).map(move |b| (wv, b)))
                .map(|(wv, b)| block(wv, b, 1))
                .collect();
            prop_assert_eq!(schedule(&hw, n0, &a), schedule(&hw, n0, &f));
        }
    }
}
