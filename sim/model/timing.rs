//! Cycle-level timing of a chip program (docs/model.md §1.4.4): per-subarray timelines and shared
//! resources arbitrated by the controller.
//!
//! A [`ChipOp`] is one controller command: a subarray op broadcast to a range of subarrays,
//! a row move between subarrays, or a host transfer. The controller issues commands in
//! program order, at most `issue_slots_per_cycle` per cycle. A command starts at the first
//! cycle at or after its issue at which every resource it needs is free, and holds each
//! resource for that resource's share of its latency:
//!
//! * an array step holds its target subarrays for `⌈(t_preset + t_pulse + t_setup)·f⌉`
//!   cycles (docs/model.md §1.4.3: preset + pulse + driver set-up, quantized to controller cycles);
//! * a row move holds the source subarray for the read, then the bus (the bank bus inside a
//!   bank, the global bus across banks) for `latency + ⌈bits / width⌉`, then the destination
//!   subarray for the write;
//! * a host load holds the host link, then the destination; a host store the source, then
//!   the link.
//!
//! Reservations are in order and never backfill an earlier gap, so the schedule is a
//! deterministic function of the program: the same stream gives the same cycles whether the
//! values were executed (functional mode) or not (analytical mode).

use std::collections::BTreeMap;

use cram_arch::{Device, Org};

use crate::model::engine::isa::Op;

/// One controller command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChipOp {
    /// A subarray op broadcast to subarrays `lo..hi` (one command, one issue slot).
    Array {
        /// First target subarray.
        lo: u32,
        /// One past the last target subarray.
        hi: u32,
        /// The op.
        op: Op,
    },
    /// Copy row `src_lane` of subarray `src` into row `dst_lane` of subarray `dst`.
    MoveRow {
        /// Source subarray.
        src: u32,
        /// Source lane.
        src_lane: u32,
        /// Destination subarray.
        dst: u32,
        /// Destination lane.
        dst_lane: u32,
    },
    /// Write one row from the host into subarray `dst`.
    HostLoad {
        /// Destination subarray.
        dst: u32,
        /// Destination lane.
        lane: u32,
    },
    /// Read one row of subarray `src` out to the host.
    HostStore {
        /// Source subarray.
        src: u32,
        /// Source lane.
        lane: u32,
    },
}

/// A resource commands compete for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// The controller's issue slots.
    Issue,
    /// One subarray.
    Subarray(u32),
    /// The bus of one bank.
    BankBus(u32),
    /// The bus between banks.
    GlobalBus,
    /// The host link.
    HostLink,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Issue => write!(f, "controller issue"),
            Resource::Subarray(s) => write!(f, "subarray {s}"),
            Resource::BankBus(b) => write!(f, "bank bus {b}"),
            Resource::GlobalBus => write!(f, "global bus"),
            Resource::HostLink => write!(f, "host link"),
        }
    }
}

/// Cycles of each array-step kind on a device and organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepCycles {
    /// Gate step with its output preset: preset + pulse + set-up.
    pub gate: u64,
    /// Gate step without preset: pulse + set-up.
    pub gate_no_preset: u64,
    /// Stand-alone column preset: write + set-up.
    pub preset: u64,
    /// Lane-mask change: set-up (at least one cycle).
    pub set_mask: u64,
    /// Memory-mode row read: sense + set-up.
    pub read_row: u64,
    /// Memory-mode row write: write + set-up.
    pub write_row: u64,
}

impl StepCycles {
    /// Derives the step latencies from the device's switching and read times and the
    /// organisation's driver set-up (stretched to a line segment's RC settling time when
    /// that is longer, [`Org::step_setup_ns`]) and clock.
    pub fn derive(device: &Device, org: &Org) -> StepCycles {
        let (t_sw, t_rd) = (device.params.t_switch_ns, device.params.t_read_ns);
        let setup = org.step_setup_ns();
        StepCycles {
            gate: org.cycles(2.0 * t_sw + setup),
            gate_no_preset: org.cycles(t_sw + setup),
            preset: org.cycles(t_sw + setup),
            set_mask: org.cycles(setup).max(1),
            read_row: org.cycles(t_rd + setup),
            write_row: org.cycles(t_sw + setup),
        }
    }

    /// Cycles of one subarray op.
    pub fn of(&self, op: &Op) -> u64 {
        match op {
            Op::Gate { preset: true, .. } => self.gate,
            Op::Gate { preset: false, .. } => self.gate_no_preset,
            Op::Preset { .. } => self.preset,
            Op::SetMask(_) => self.set_mask,
            Op::ReadRow { .. } => self.read_row,
            Op::WriteRow { .. } => self.write_row,
        }
    }
}

/// Busy time of one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceUse {
    /// Which resource.
    pub resource: Resource,
    /// Readable name.
    pub name: String,
    /// Cycles it was held.
    pub busy_cycles: u64,
    /// Busy cycles over total cycles (issue: commands over slots).
    pub utilization: f64,
}

/// Outcome of scheduling a program.
#[derive(Debug, Clone, PartialEq)]
pub struct TimingReport {
    /// Cycles from the first issue to the end of the last command.
    pub cycles: u64,
    /// The same in ns.
    pub time_ns: f64,
    /// Commands scheduled.
    pub commands: u64,
    /// Every resource that was used, in resource order.
    pub resources: Vec<ResourceUse>,
    /// Commands on the critical path (the chain that ends last).
    pub critical_path_commands: u64,
    /// Cycles of the critical path spent holding each resource, by resource name.
    pub critical_path_cycles: BTreeMap<String, u64>,
}

/// One scheduled command's reservations: (resource, start, end).
type Holds = Vec<(Resource, u64, u64)>;

/// The scheduler: per-resource next-free cycle, busy totals and the critical-path links.
pub struct Timeline<'a> {
    org: &'a Org,
    steps: StepCycles,
    cols: u64,
    free: BTreeMap<Resource, (u64, Option<usize>)>,
    busy: BTreeMap<Resource, u64>,
    issue_cycle: u64,
    issued_this_cycle: u32,
    /// Per command: its reservations and the command it waited for.
    log: Vec<(Holds, Option<usize>)>,
}

impl<'a> Timeline<'a> {
    /// An empty timeline for a device on an organisation.
    pub fn new(device: &Device, org: &'a Org) -> Timeline<'a> {
        Timeline {
            org,
            steps: StepCycles::derive(device, org),
            cols: u64::from(org.params.cols_per_subarray),
            free: BTreeMap::new(),
            busy: BTreeMap::new(),
            issue_cycle: 0,
            issued_this_cycle: 0,
            log: Vec::new(),
        }
    }

    /// Schedules one command and returns its (start, end) cycles.
    pub fn push(&mut self, op: &ChipOp) -> (u64, u64) {
        let issue = self.issue();
        // Phases: (resources held, cycles), in order.
        let phases: Vec<(Vec<Resource>, u64)> = match *op {
            ChipOp::Array { lo, hi, op } => vec![(
                (lo..hi).map(Resource::Subarray).collect(),
                self.steps.of(&op),
            )],
            ChipOp::MoveRow { src, dst, .. } => {
                let (bus, params) = if self.org.bank_of(src) == self.org.bank_of(dst) {
                    (
                        Resource::BankBus(self.org.bank_of(src)),
                        self.org.params.bank_bus,
                    )
                } else {
                    (Resource::GlobalBus, self.org.params.global_bus)
                };
                vec![
                    (vec![Resource::Subarray(src)], self.steps.read_row),
                    (vec![bus], Org::bus_cycles(&params, self.cols)),
                    (vec![Resource::Subarray(dst)], self.steps.write_row),
                ]
            }
            ChipOp::HostLoad { dst, .. } => vec![
                (vec![Resource::HostLink], self.org.host_cycles(self.cols)),
                (vec![Resource::Subarray(dst)], self.steps.write_row),
            ],
            ChipOp::HostStore { src, .. } => vec![
                (vec![Resource::Subarray(src)], self.steps.read_row),
                (vec![Resource::HostLink], self.org.host_cycles(self.cols)),
            ],
        };
        // Earliest start such that each phase finds its resources free when it begins.
        let mut start = issue;
        let mut waited_for = None;
        let mut offset = 0;
        for (resources, cycles) in &phases {
            for r in resources {
                if let Some(&(free, by)) = self.free.get(r) {
                    let need = free.saturating_sub(offset);
                    if need > start {
                        start = need;
                        waited_for = by;
                    }
                }
            }
            offset += cycles;
        }
        let index = self.log.len();
        let mut holds = Vec::new();
        let mut t = start;
        for (resources, cycles) in phases {
            for r in resources {
                self.free.insert(r, (t + cycles, Some(index)));
                *self.busy.entry(r).or_default() += cycles;
                holds.push((r, t, t + cycles));
            }
            t += cycles;
        }
        self.log.push((holds, waited_for));
        (start, t)
    }

    /// Takes the next issue slot.
    fn issue(&mut self) -> u64 {
        if self.issued_this_cycle == self.org.params.issue_slots_per_cycle {
            self.issue_cycle += 1;
            self.issued_this_cycle = 0;
        }
        self.issued_this_cycle += 1;
        *self.busy.entry(Resource::Issue).or_default() += 1;
        self.issue_cycle
    }

    /// Totals, utilizations and the critical path.
    pub fn report(&self) -> TimingReport {
        let end_of = |i: usize| self.log[i].0.iter().map(|h| h.2).max().unwrap_or(0);
        let cycles = (0..self.log.len()).map(end_of).max().unwrap_or(0);
        let resources = self
            .busy
            .iter()
            .map(|(&resource, &busy_cycles)| {
                let capacity = match resource {
                    Resource::Issue => {
                        cycles.max(1) * u64::from(self.org.params.issue_slots_per_cycle)
                    }
                    _ => cycles.max(1),
                };
                ResourceUse {
                    resource,
                    name: resource.to_string(),
                    busy_cycles,
                    utilization: busy_cycles as f64 / capacity as f64,
                }
            })
            .collect();
        // Walk back from the command that ends last (the first such, for determinism).
        let mut critical_path_cycles = BTreeMap::new();
        let mut critical_path_commands = 0;
        let mut at = (0..self.log.len()).find(|&i| end_of(i) == cycles);
        while let Some(i) = at {
            critical_path_commands += 1;
            let (holds, waited_for) = &self.log[i];
            // For a broadcast, count the phase once (under its first subarray).
            let mut seen_phase = Vec::new();
            for &(r, s, e) in holds {
                if !seen_phase.contains(&(s, e)) {
                    seen_phase.push((s, e));
                    let key = match r {
                        Resource::Subarray(_) => "subarrays".to_owned(),
                        other => other.to_string(),
                    };
                    *critical_path_cycles.entry(key).or_default() += e - s;
                }
            }
            at = *waited_for;
        }
        TimingReport {
            cycles,
            time_ns: cycles as f64 / self.org.params.clock_ghz,
            commands: self.log.len() as u64,
            resources,
            critical_path_commands,
            critical_path_cycles,
        }
    }
}

/// Schedules a whole chip program.
pub fn schedule(device: &Device, org: &Org, program: &[ChipOp]) -> TimingReport {
    let mut t = Timeline::new(device, org);
    for op in program {
        t.push(op);
    }
    t.report()
}

/// Cycles of a subarray program broadcast to any number of subarrays with one issue slot per
/// cycle or more: every step runs in lockstep, so the total is the sum of the step latencies
/// (each step takes at least one cycle, so issue never limits). Equal to
/// `schedule(broadcast(..)).cycles` (tested); O(1) given the counts.
pub fn broadcast_cycles(counts: &crate::model::engine::OpCounts, steps: &StepCycles) -> u64 {
    counts.gate_presets * steps.gate
        + (counts.gate_steps - counts.gate_presets) * steps.gate_no_preset
        + counts.column_presets * steps.preset
        + counts.masks * steps.set_mask
        + counts.row_reads * steps.read_row
        + counts.row_writes * steps.write_row
}

/// A subarray program broadcast to subarrays `0..subarrays`, as the kernel command runs it.
pub fn broadcast(program: &crate::model::engine::Program, subarrays: u32) -> Vec<ChipOp> {
    program
        .ops()
        .iter()
        .map(|&op| ChipOp::Array {
            lo: 0,
            hi: subarrays,
            op,
        })
        .collect()
}
