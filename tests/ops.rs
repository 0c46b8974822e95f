//! Per-command timing, in the style of a DRAM device-timing suite: one command at a time,
//! cycles checked against values computed by hand from the presets (stt-projected: t_switch
//! 1 ns, t_read 1 ns; cram-1k: 1 GHz, 0.5 ns driver set-up, 1024 columns, 256-bit bank bus
//! with 2 cycles latency, 512-bit global bus with 4, host link 25.6 GB/s with 20), plus the
//! contention cases: shared buses serialize, separate ones overlap.

use cramulator::arch::{GateKind, presets};
use cramulator::model::engine::isa::{LaneMask, Op};
use cramulator::model::timing::{ChipOp, Resource, Timeline, schedule};

fn setup() -> (cramulator::arch::Device, cramulator::arch::Org) {
    (
        presets::device("stt-projected").unwrap(),
        presets::array("cram-1k").unwrap(),
    )
}

fn nand(out: u16, preset: bool) -> Op {
    Op::Gate {
        gate: GateKind::Nand,
        ins: [0, 1, 0, 0, 0],
        out,
        preset,
    }
}

fn on(s: u32, op: Op) -> ChipOp {
    ChipOp::Array {
        lo: s,
        hi: s + 1,
        op,
    }
}

/// Cycles of a program of one command.
fn one(op: ChipOp) -> u64 {
    let (d, o) = setup();
    schedule(&d, &o, &[op]).cycles
}

#[test]
fn gate_step_is_preset_plus_pulse_plus_setup() {
    // 1 + 1 + 0.5 ns = 2.5 ns → 3 cycles at 1 GHz.
    assert_eq!(one(on(0, nand(2, true))), 3);
    // Without the preset: 1 + 0.5 → 2.
    assert_eq!(one(on(0, nand(2, false))), 2);
    // On stt-today (t_switch 3 ns): 6.5 ns → 7 cycles.
    let today = presets::device("stt-today").unwrap();
    let org = presets::array("cram-1k").unwrap();
    assert_eq!(schedule(&today, &org, &[on(0, nand(2, true))]).cycles, 7);
}

#[test]
fn column_preset_mask_and_row_access() {
    assert_eq!(
        one(on(
            0,
            Op::Preset {
                col: 3,
                value: true
            }
        )),
        2
    ); // 1 + 0.5
    assert_eq!(one(on(0, Op::SetMask(LaneMask::Range { lo: 0, hi: 8 }))), 1); // 0.5 → 1
    assert_eq!(one(on(0, Op::ReadRow { lane: 5 })), 2); // t_read 1 + 0.5
    assert_eq!(one(on(0, Op::WriteRow { lane: 5, row: 0 })), 2); // t_switch 1 + 0.5
}

#[test]
fn row_moves_and_host_transfers() {
    // Same bank: read 2 + bus (2 + 1024/256 = 6) + write 2 = 10.
    assert_eq!(
        one(ChipOp::MoveRow {
            src: 0,
            src_lane: 0,
            dst: 1,
            dst_lane: 0
        }),
        10
    );
    // Across banks (subarray 16 is bank 1): read 2 + global (4 + 1024/512 = 6) + write 2.
    assert_eq!(
        one(ChipOp::MoveRow {
            src: 0,
            src_lane: 0,
            dst: 16,
            dst_lane: 0
        }),
        10
    );
    // Host load: link 20 + ⌈1024 bits / 25.6 GB/s = 5 ns⌉ = 25, then write 2.
    assert_eq!(one(ChipOp::HostLoad { dst: 0, lane: 0 }), 27);
    assert_eq!(one(ChipOp::HostStore { src: 0, lane: 0 }), 27);
}

#[test]
fn steps_on_one_subarray_serialize_and_on_two_overlap() {
    let (d, o) = setup();
    let same = schedule(&d, &o, &[on(0, nand(2, true)), on(0, nand(3, true))]);
    assert_eq!(same.cycles, 6);
    // The second command issues one cycle later and runs on its own subarray.
    let apart = schedule(&d, &o, &[on(0, nand(2, true)), on(1, nand(3, true))]);
    assert_eq!(apart.cycles, 4);
    // A broadcast holds every target for the step and costs one issue slot.
    let b = schedule(
        &d,
        &o,
        &[ChipOp::Array {
            lo: 0,
            hi: 64,
            op: nand(2, true),
        }],
    );
    assert_eq!(b.cycles, 3);
    let issue = b
        .resources
        .iter()
        .find(|u| u.resource == Resource::Issue)
        .unwrap();
    assert_eq!(issue.busy_cycles, 1);
}

#[test]
fn two_moves_over_one_bank_bus_serialize_and_over_two_banks_overlap() {
    let (d, o) = setup();
    let mv = |src, dst| ChipOp::MoveRow {
        src,
        src_lane: 0,
        dst,
        dst_lane: 0,
    };
    // Bank 0 twice: the second transfer waits for the bus (free at 8), so it starts reading
    // at 6 and ends at 6 + 10 = 16: the bus is busy 12 of 16 cycles.
    let shared = schedule(&d, &o, &[mv(0, 1), mv(2, 3)]);
    assert_eq!(shared.cycles, 16);
    let bus = shared
        .resources
        .iter()
        .find(|u| u.resource == Resource::BankBus(0))
        .unwrap();
    assert_eq!(bus.busy_cycles, 12);
    // Banks 0 and 1: independent buses; the second only waits for its issue slot.
    let split = schedule(&d, &o, &[mv(0, 1), mv(16, 17)]);
    assert_eq!(split.cycles, 11);
    // The critical path of the shared case runs through the bank bus.
    assert_eq!(shared.critical_path_commands, 2);
    assert!(
        shared.critical_path_cycles.contains_key("bank bus 0"),
        "{:?}",
        shared.critical_path_cycles
    );
}

#[test]
fn issue_width_limits_commands_per_cycle() {
    let (d, mut o) = setup();
    let prog: Vec<ChipOp> = (0..4).map(|s| on(s, nand(2, true))).collect();
    // One slot per cycle: the 4th command issues at cycle 3 and ends at 6.
    assert_eq!(schedule(&d, &o, &prog).cycles, 6);
    o.params.issue_slots_per_cycle = 4;
    assert_eq!(schedule(&d, &o, &prog).cycles, 3);
    let mut t = Timeline::new(&d, &o);
    assert_eq!(t.push(&prog[0]), (0, 3));
}
