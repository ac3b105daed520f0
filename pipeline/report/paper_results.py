"""The numbers the paper publishes (Tables 1-4, Sec. 5.3-5.4, Fig. 4), transcribed from its text.

Accuracies are percentages. Keys follow the pipeline's names: datasets "ucf101" / "hmdb51",
streams "rgb" / "flow", architectures "convnet" / "lstm" / "alstm" / "convlstm" / "convalstm",
attention "appearance" / "motion". None stands for the paper's "n/a".
"""

DATASETS = ("ucf101", "hmdb51")
STREAMS = ("rgb", "flow")
ARCHS = ("convnet", "lstm", "alstm", "convlstm", "convalstm")
ATTENTIONS = ("appearance", "motion")

TABLE1 = {
    "ucf101": {
        "rgb": {"convnet": 77.4, "lstm": 77.5, "alstm": 77.0, "convlstm": 77.6, "convalstm": 79.6},
        "flow": {"convnet": 75.2, "lstm": 78.3, "alstm": 79.5, "convlstm": 80.4, "convalstm": 82.1},
    },
    "hmdb51": {
        "rgb": {"convnet": 42.2, "lstm": 41.3, "alstm": 40.9, "convlstm": 41.8, "convalstm": 43.3},
        "flow": {"convnet": 41.8, "lstm": 46.0, "alstm": 49.2, "convlstm": 48.2, "convalstm": 52.6},
    },
}
"""Table 1, "Convolutional ALSTM networks": accuracy of each architecture on RGB appearance or
optical-flow input, UCF101 and HMDB51 (the text says first split for both, Sec. 5.3, although
Sec. 5.1 says HMDB51 results are averaged over its 3 splits). TABLE1[dataset][stream][arch]."""

TABLE2 = {
    "ucf101": {
        "appearance": {"alstm": 77.0, "convalstm": 79.6},
        "motion": {"alstm": 78.6, "convalstm": 79.9},
    },
    "hmdb51": {
        "appearance": {"alstm": 40.9, "convalstm": 43.3},
        "motion": {"alstm": 42.6, "convalstm": 44.8},
    },
}
"""Table 2, "Motion-based Attention": accuracy of ALSTM and ConvALSTM on RGB input with the
attention driven by appearance or by optical flow, UCF101 and HMDB51 first split. The motion
ConvALSTM is the VideoLSTM. TABLE2[dataset][attention][arch]."""

TABLE3 = {
    "Donahue et al.": {"ucf101": 82.9, "hmdb51": None},
    "Ng et al.": {"ucf101": 88.3, "hmdb51": None},
    "Srivastava et al.": {"ucf101": 84.3, "hmdb51": 44.0},
    "Sharma et al.": {"ucf101": 77.0, "hmdb51": 41.3},
    "This paper": {"ucf101": 89.2, "hmdb51": 56.4},
}
"""Table 3, state of the art for LSTM-like architectures: UCF101 split 1 and HMDB51 accuracy.
"This paper" is VideoLSTM with product fusion of its RGB and flow models; the UCF101 number for
Sharma et al. is the paper's own implementation of their ALSTM (= TABLE1 ucf101 rgb alstm);
Srivastava et al. report HMDB51 on RGB input only."""

TABLE3_PROPERTIES = {
    "Donahue et al.": ("rgb", "flow", "deep convnet", "plain lstm", "imagenet"),
    "Ng et al.": ("rgb", "flow", "very deep convnet", "plain lstm", "imagenet", "sports1m"),
    "Srivastava et al.": ("rgb", "flow", "very deep convnet", "plain lstm", "imagenet",
                          "sports1m"),
    "Sharma et al.": ("rgb", "very deep convnet", "attention lstm", "imagenet"),
    "This paper": ("rgb", "flow", "very deep convnet", "attention lstm", "imagenet"),
}
"""Table 3's check marks per row: input (rgb, flow), ConvNet (deep, very deep), LSTM (plain,
attention) and pre-training (imagenet, sports1m)."""

TABLE4 = {
    "iDT(FV)": {"ucf101": 83.0, "hmdb51": 57.9},
    "iDT(FV)+VideoLSTM": {"ucf101": 91.5, "hmdb51": 63.0},
    "iDT(FV)+Objects": {"ucf101": 87.6, "hmdb51": 61.4},
    "iDT(FV)+Objects+VideoLSTM": {"ucf101": 92.2, "hmdb51": 64.9},
    "iDT(SFV)+Objects": {"ucf101": None, "hmdb51": 71.3},
    "iDT(SFV)+Objects+VideoLSTM": {"ucf101": None, "hmdb51": 72.9},
}
"""Table 4, combination with hand-crafted iDT features (Fisher vectors, FV; stacked Fisher
vectors, SFV, HMDB51 only) and object scores by product fusion with exponential weights:
UCF101 and HMDB51 accuracy."""

OTHER_RESULTS = {
    "Two-stream (Simonyan and Zisserman)": {"ucf101": 87.0, "hmdb51": 59.4},
    "Wu et al. (CNN + LSTM + Fusion Network)": {"ucf101": 91.3, "hmdb51": None},
}
"""Accuracies of non-LSTM methods quoted in the text of Sec. 5.3, outside the tables."""

FIG4 = {
    "saliency_threshold": 100.0,
    "recall_methods": ("VideoLSTM", "VideoLSTM, no smoothing", "ALSTM", "ALSTM, no smoothing"),
    "map_methods": ("VideoLSTM", "Yu et al.", "Weinzaepfel et al.", "van Gemert et al. (APT)"),
    "reported_thresholds": {"Yu et al.": (0.125,)},
    "reported_threshold_counts": {"Weinzaepfel et al.": 4},
    "recall": {},
    "map": {},
}
"""Fig. 4 and Sec. 5.4, THUMOS13 localization, first split. Fig. 4 is a plot and the text gives
none of its values, so "recall" (Fig. 4a, recall vs IoU) and "map" (Fig. 4b, video mAP vs IoU)
hold no curves. What the text does state: the saliency threshold theta_t = 100 (Eq. 16); Fig. 4a
compares VideoLSTM and the ALSTM of Sharma et al., each with and without temporal smoothing;
Fig. 4b compares VideoLSTM with three box-supervised methods; Yu et al. report only at IoU
0.125 and Weinzaepfel et al. at four thresholds (their values are not in the text)."""
