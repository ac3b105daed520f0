"""The transcribed paper numbers: complete keys, and consistent with what the paper's prose says
about its own tables (Sec. 5.3, 5.4), so a mistyped value shows up as a broken statement."""

import pytest

from pipeline.report import paper_results as paper


def test_table1_covers_every_dataset_stream_and_arch():
    assert set(paper.TABLE1) == set(paper.DATASETS)
    for dataset in paper.DATASETS:
        assert set(paper.TABLE1[dataset]) == set(paper.STREAMS)
        for stream in paper.STREAMS:
            row = paper.TABLE1[dataset][stream]
            assert set(row) == set(paper.ARCHS)
            assert all(0 < value < 100 for value in row.values())


def test_table1_matches_the_gains_the_text_states():
    # Sec. 5.3: ConvALSTM on appearance gains +2.2% (UCF101) and +1.1% (HMDB51) over the ConvNet;
    # on flow +3.8% over LSTM, +2.6% over ALSTM, +1.7% over ConvLSTM on UCF101.
    t = paper.TABLE1
    for dataset, gain in (("ucf101", 2.2), ("hmdb51", 1.1)):
        rgb = t[dataset]["rgb"]
        assert rgb["convalstm"] - rgb["convnet"] == pytest.approx(gain)
    flow = t["ucf101"]["flow"]
    for arch, gain in (("lstm", 3.8), ("alstm", 2.6), ("convlstm", 1.7)):
        assert flow["convalstm"] - flow[arch] == pytest.approx(gain)
    for dataset in paper.DATASETS:
        # "With flow frames all the LSTM-based models improve over the ConvNet baseline" and
        # ConvALSTM is best for both inputs (Table 1 caption).
        flow = t[dataset]["flow"]
        assert all(flow[arch] > flow["convnet"] for arch in paper.ARCHS[1:])
        for stream in paper.STREAMS:
            row = t[dataset][stream]
            assert max(row, key=row.get) == "convalstm"


def test_table2_appearance_row_is_table1_rgb_and_motion_gains_match_text():
    for dataset in paper.DATASETS:
        assert set(paper.TABLE2[dataset]) == set(paper.ATTENTIONS)
        for arch in ("alstm", "convalstm"):
            assert paper.TABLE2[dataset]["appearance"][arch] == paper.TABLE1[dataset]["rgb"][arch]
    # Sec. 5.3: motion attention +1.6% (UCF101) and +1.7% (HMDB51) for ALSTM, +1.5% for
    # ConvALSTM on HMDB51.
    gain = {(d, a): paper.TABLE2[d]["motion"][a] - paper.TABLE2[d]["appearance"][a]
            for d in paper.DATASETS for a in ("alstm", "convalstm")}
    assert gain["ucf101", "alstm"] == pytest.approx(1.6)
    assert gain["hmdb51", "alstm"] == pytest.approx(1.7)
    assert gain["hmdb51", "convalstm"] == pytest.approx(1.5)
    assert 0 < gain["ucf101", "convalstm"] < gain["ucf101", "alstm"]


def test_table3_rows_and_this_paper_is_best():
    assert list(paper.TABLE3) == ["Donahue et al.", "Ng et al.", "Srivastava et al.",
                                  "Sharma et al.", "This paper"]
    assert paper.TABLE3["This paper"] == {"ucf101": 89.2, "hmdb51": 56.4}
    # Sec. 5.3: the UCF101 number for Sharma et al. is the paper's own ALSTM of Table 1.
    assert paper.TABLE3["Sharma et al."]["ucf101"] == paper.TABLE1["ucf101"]["rgb"]["alstm"]
    for dataset in paper.DATASETS:
        reported = {name: row[dataset] for name, row in paper.TABLE3.items()
                    if row[dataset] is not None}
        assert max(reported, key=reported.get) == "This paper"
    assert set(paper.TABLE3_PROPERTIES) == set(paper.TABLE3)


def test_table4_fusion_with_videolstm_always_improves_and_reaches_stated_best():
    for name, row in paper.TABLE4.items():
        assert set(row) == set(paper.DATASETS)
        if name.endswith("+VideoLSTM"):
            base = paper.TABLE4[name.removesuffix("+VideoLSTM")]
            for dataset in paper.DATASETS:
                if base[dataset] is not None:
                    assert row[dataset] > base[dataset]
    # Sec. 5.3: "state of the art performance 92.2% on UCF101 and 72.9% on HMDB51".
    for dataset, best in (("ucf101", 92.2), ("hmdb51", 72.9)):
        assert max(r[dataset] for r in paper.TABLE4.values() if r[dataset] is not None) == best
    assert paper.TABLE4["iDT(SFV)+Objects"]["ucf101"] is None


def test_fig4_holds_only_what_the_text_states():
    assert paper.FIG4["recall"] == {} and paper.FIG4["map"] == {}
    assert paper.FIG4["saliency_threshold"] == 100.0
    assert paper.FIG4["reported_thresholds"] == {"Yu et al.": (0.125,)}
    assert set(paper.FIG4["reported_thresholds"]) <= set(paper.FIG4["map_methods"])
    assert set(paper.FIG4["reported_threshold_counts"]) <= set(paper.FIG4["map_methods"])
