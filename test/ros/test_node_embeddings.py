"""What a mapper reads from the node over real DDS: label_info, segment_embeddings, encode_text, query.

The tiny real FC-CLIP (and the tiny CAT-Seg, a semantic-only model) run in the node; the
embeddings published for a frame are compared with what ``ovseg_models`` computes offline for the
same frame with the same model object, and the services' answers with the same computation.
"""

from __future__ import annotations

import numpy as np
import pytest
from node_harness import Probe, rgb_image, running_node, stamp_key, tiny_params, write_vocab_file
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_test_utils import spin_until

from ovseg.msg import SegmentEmbeddings
from ovseg.srv import EncodeText, QuerySegments
from ovseg_models.embeddings import segment_embeddings
from ovseg_models.segments import segments_from_semantic
from ovseg_ros import conversions, messages

vision_msgs = pytest.importorskip("vision_msgs.msg", reason="vision_msgs is not installed (run tools/setup.sh)")

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture
def vocab_file(tmp_path):
    return write_vocab_file(tmp_path)


class MapperProbe(Probe):
    """The probe plus what a mapping system subscribes to and calls."""

    def __init__(self, ros_context, executor, ns="/segmentation"):
        super().__init__(ros_context, executor, ns=ns, overlay=False)
        self.got["embeddings"] = []
        self.got["label_info"] = []
        q = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(SegmentEmbeddings, f"{ns}/segment_embeddings", self.got["embeddings"].append, q)
        self.node.create_subscription(vision_msgs.LabelInfo, f"{ns}/label_info", self.got["label_info"].append, LATCHED)
        self.encode_client = self.node.create_client(EncodeText, f"{ns}/encode_text")
        self.query_client = self.node.create_client(QuerySegments, f"{ns}/query")

    def frame(self, img):
        """Send ``img``; its (segment_embeddings, panoptic) messages."""
        emb = self.send_and_wait(conversions.numpy_to_image(img, "rgb8"), "embeddings")
        assert spin_until(self.executor, lambda: any(stamp_key(m) == stamp_key(emb) for m in self.got["panoptic"]), 10)
        return emb, next(m for m in self.got["panoptic"] if stamp_key(m) == stamp_key(emb))

    def encode_text(self, texts):
        return self.call(self.encode_client, EncodeText.Request(texts=list(texts)))

    def query(self, texts, stamp=(0, 0), camera=""):
        req = QuerySegments.Request(texts=list(texts), camera=camera)
        req.stamp.sec, req.stamp.nanosec = stamp
        return self.call(self.query_client, req)


def _rows(msg) -> np.ndarray:
    return np.asarray(msg.data, np.float32).reshape(len(msg.segment_ids), msg.dimension)


def test_label_info_follows_every_vocabulary_and_threshold(ros_context, executor, vocab_file):
    with running_node(ros_context, tiny_params(vocab_file, semantic_score_threshold=0.25)) as node:
        probe = MapperProbe(ros_context, executor)
        assert spin_until(executor, lambda: probe.got["label_info"], 10), "no label_info (transient local)"
        info = probe.got["label_info"][-1]
        assert [(c.class_id, c.class_name) for c in info.class_map] == list(
            enumerate(["wall", "floor", "person", "cup"])
        )
        assert info.threshold == pytest.approx(0.25)
        assert info.header.stamp == probe.get_vocabulary().stamp
        for names in (["apple", "banana"], ["car", "bus", "road"]):
            assert probe.set_vocabulary(names).success
            assert spin_until(
                executor, lambda n=names: [c.class_name for c in probe.got["label_info"][-1].class_map] == n, 10
            )
            assert [c.class_id for c in probe.got["label_info"][-1].class_map] == list(range(len(names)))
        node.set_parameters([Parameter("semantic_score_threshold", value=0.5)])
        assert spin_until(executor, lambda: probe.got["label_info"][-1].threshold == pytest.approx(0.5), 10)
        # a late subscriber gets the current one
        late = MapperProbe(ros_context, executor)
        assert spin_until(executor, lambda: late.got["label_info"], 10)
        assert [c.class_name for c in late.got["label_info"][-1].class_map] == ["car", "bus", "road"]


def test_embeddings_equal_the_offline_computation_and_answer_queries(ros_context, executor, vocab_file):
    params = tiny_params(vocab_file, **{"publish.embeddings": True, "embeddings.cache_frames": 3})
    with running_node(ros_context, params) as node:
        probe = MapperProbe(ros_context, executor)
        probe.wait_connected()
        img = rgb_image(3, 96, 128)
        emb_msg, pan = probe.frame(img)
        assert emb_msg.header == pan.header and emb_msg.vocabulary_version == pan.vocabulary_version
        assert list(emb_msg.segment_ids) == [s.id for s in pan.segments]
        assert len(pan.segments) > 0
        rows = _rows(emb_msg)
        assert emb_msg.dimension == 1024  # RN50's text width
        np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
        # offline, the same model object on the same frame
        seg = node.segmenter
        offline = seg.predict(img, vocabulary=node.vocabulary.encoded, max_output_side=64, embeddings=True)
        assert [s.id for s in offline.segments] == list(emb_msg.segment_ids)
        np.testing.assert_allclose(rows, segment_embeddings(offline), atol=1e-5)
        # and the whole frame's CLIP embedding
        image = np.asarray(emb_msg.image_embedding, np.float32)
        assert image.shape == (1024,)
        np.testing.assert_allclose(image, offline.image_embedding.numpy(), atol=1e-5)

        # encode_text: the model's text embeddings
        texts = ["a red mug", "a wall"]
        enc = probe.encode_text(texts)
        assert enc.success, enc.message
        text = np.asarray(enc.data, np.float32).reshape(len(texts), enc.dimension)
        np.testing.assert_allclose(text, seg.encode_text(texts).numpy(), atol=1e-6)

        # query: that frame by stamp, and the newest by zero stamp
        ans = probe.query(texts, stamp_key(pan))
        assert ans.success, ans.message
        assert ans.header == pan.header and list(ans.segment_ids) == list(emb_msg.segment_ids)
        sims = np.asarray(ans.similarities, np.float32).reshape(len(ans.segment_ids), len(texts))
        np.testing.assert_allclose(sims, rows @ text.T, atol=1e-5)
        assert list(ans.best_segment_ids) == [emb_msg.segment_ids[i] for i in np.argmax(rows @ text.T, axis=0)]
        np.testing.assert_allclose(np.asarray(ans.image_similarities), text @ image, atol=1e-5)
        assert probe.query(["mug"]).header == pan.header
        assert probe.get_vocabulary().version == pan.vocabulary_version  # the vocabulary is untouched

        # the cache keeps the newest 3 frames: the first one ages out
        for seed in range(4, 7):
            last = probe.send_and_wait(conversions.numpy_to_image(rgb_image(seed, 96, 128), "rgb8"), "embeddings")
        assert probe.query(texts).header == last.header
        old = probe.query(texts, stamp_key(pan))
        assert not old.success and "no frame with stamp" in old.message and "cache_frames" in old.message
        # bad requests are refused with a reason, and the node goes on
        for bad, why in (([], "at least one"), (["x" * 5000], "characters"), (["ok", ""], "empty")):
            r = probe.query(bad)
            assert not r.success and why in r.message
            assert not probe.encode_text(bad).success
        assert not probe.query(["mug"], camera="left").success
        probe.send_and_wait(conversions.numpy_to_image(img, "rgb8"), "panoptic")


def test_without_publish_embeddings_query_says_so(ros_context, executor, vocab_file):
    with running_node(ros_context, tiny_params(vocab_file)) as node:
        probe = MapperProbe(ros_context, executor)
        probe.wait_connected()
        probe.send_and_wait(conversions.numpy_to_image(rgb_image(1), "rgb8"), "panoptic")
        assert "segment_embeddings" not in node.outputs
        r = probe.query(["mug"])
        assert not r.success and "publish.embeddings is false" in r.message
        assert probe.encode_text(["mug"]).success  # encode_text needs no cache


def test_a_slow_encode_text_holds_back_neither_frames_nor_other_services(ros_context, executor, vocab_file):
    """encode_text and query run the text tower off the executor: while a long text encoding runs,
    frames are segmented and published, get_vocabulary answers, and the requests are answered in
    turn with what the model computes."""
    import threading
    import time

    from ovseg.srv import GetVocabulary

    params = tiny_params(vocab_file, **{"publish.embeddings": True})
    with running_node(ros_context, params) as node:
        seg = node.segmenter
        fast = seg.encode_text
        running, release = threading.Event(), threading.Event()

        def slow_encode_text(texts, **kw):  # a long list on a large model, until the test releases it
            running.set()
            release.wait(20)
            return fast(texts, **kw)

        probe = MapperProbe(ros_context, executor)
        probe.wait_connected()
        assert spin_until(executor, probe.encode_client.service_is_ready, 10)
        assert spin_until(executor, probe.query_client.service_is_ready, 10)
        seg.encode_text = slow_encode_text
        try:
            texts = ["a red mug", "a fire extinguisher"]
            encoding = probe.encode_client.call_async(EncodeText.Request(texts=texts))
            querying = probe.query_client.call_async(QuerySegments.Request(texts=["a chair"]))
            assert spin_until(executor, running.is_set, 10), "encode_text never started"
            t0 = time.monotonic()
            probe.send_and_wait(conversions.numpy_to_image(rgb_image(2), "rgb8"), "panoptic")
            get = probe.get_client.call_async(GetVocabulary.Request())
            assert spin_until(executor, get.done, 10), "get_vocabulary waited behind encode_text"
            assert not encoding.done() and not querying.done(), "the test must look while the encoding runs"
            assert get.result().vocabulary.version == node.vocabulary.version
            held = time.monotonic() - t0
        finally:
            release.set()
        assert spin_until(executor, lambda: encoding.done() and querying.done(), 20)
        seg.encode_text = fast
        enc, ans = encoding.result(), querying.result()
        assert enc.success and ans.success, (enc.message, ans.message)
        text = np.asarray(enc.data, np.float32).reshape(len(texts), enc.dimension)
        np.testing.assert_allclose(text, fast(texts).numpy(), atol=1e-6)
        assert held < 10, f"a frame and get_vocabulary took {held:.1f} s while encode_text ran"


def test_semantic_only_model_pools_dense_features_over_its_class_segments(ros_context, executor, vocab_file):
    """CAT-Seg: one segment per class present; its embedding pools the dense CLIP features."""
    from tiny_models import tiny_catseg

    catseg = tiny_catseg(0, sliding_window=False)
    params = tiny_params(vocab_file, **{"publish.embeddings": True})
    with running_node(ros_context, params, factory=lambda *a, **k: catseg) as node:
        probe = MapperProbe(ros_context, executor)
        probe.wait_connected()
        img = rgb_image(5, 48, 64)
        emb_msg, pan = probe.frame(img)
        assert emb_msg.dimension == 32 and list(emb_msg.segment_ids) == [s.id for s in pan.segments]
        offline = catseg.predict(img, vocabulary=node.vocabulary.encoded, embeddings=True)
        labels = messages.semantic_labels(offline, 0.0)
        ids, segments = segments_from_semantic(labels, offline.score, node.vocabulary.encoded.vocabulary)
        np.testing.assert_allclose(_rows(emb_msg), segment_embeddings(offline, ids, segments), atol=1e-5)
        np.testing.assert_allclose(np.asarray(emb_msg.image_embedding), offline.image_embedding.numpy(), atol=1e-5)
        ans = probe.query(["a red mug"])
        assert ans.success and len(ans.similarities) == len(pan.segments)
        text = catseg.encode_text(["a red mug"]).numpy()
        np.testing.assert_allclose(
            np.asarray(ans.image_similarities), text @ offline.image_embedding.numpy(), atol=1e-5
        )


def test_prompt_free_mode_publishes_class_agnostic_segments_with_embeddings(ros_context, executor, vocab_file):
    params = tiny_params(vocab_file, **{"publish.embeddings": True, "fcclip.class_agnostic": True})
    with running_node(ros_context, params) as node:
        assert node.segmenter.class_agnostic
        probe = MapperProbe(ros_context, executor)
        probe.wait_connected()
        img = rgb_image(3, 96, 128)
        emb_msg, pan = probe.frame(img)
        offline = node.segmenter.predict(img, vocabulary=node.vocabulary.encoded, max_output_side=64, embeddings=True)
        assert all(len(s.queries) == 1 for s in offline.segments)
        assert [(s.id, s.is_thing) for s in pan.segments] == [(s.id, True) for s in offline.segments]
        assert [s.score for s in pan.segments] == pytest.approx([s.score for s in offline.segments], abs=1e-6)
        np.testing.assert_allclose(_rows(emb_msg), segment_embeddings(offline), atol=1e-5)
