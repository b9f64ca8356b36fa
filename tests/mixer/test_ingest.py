import gzip
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from mixer import MixerError
from mixer.corpus import AddRequest, add_corpus
from mixer.domain import Domain, list_domains
from mixer.ingest import IngestConfig, validation_indices
from mixer.sources import ReadOptions
from mixer.tokenizers import ByteTokenizer
from mixer.workspace import open_workspace
from tests.conftest import CORPUS, needs_corpus, synthetic_documents, write_jsonl


@pytest.fixture
def ws(tmp_path):
    return open_workspace(tmp_path / "ws")


def _add(ws, name, *sources, **kw):
    read = {k: kw.pop(k) for k in ("text_field", "split_on_blank_lines", "skip_bad_lines") if k in kw}
    return add_corpus(ws, AddRequest(name=name, sources=list(sources), read=ReadOptions(**read), **kw))


def test_jsonl_round_trip_and_held_out_documents_never_in_training(ws, tmp_path):
    docs = synthetic_documents(0, 500, "abcdefgh ")
    meta = _add(ws, "web", write_jsonl(tmp_path / "web.jsonl", docs))
    domain = Domain.open(ws.domain_dir("web"))
    assert meta.n_docs + meta.n_val_docs == 500 and meta.n_val_docs == 64  # 1%, at least 64
    tok = ByteTokenizer()
    val_texts = [tok.decode(d) for d in domain.val_documents()]
    train_bytes = bytes(np.asarray(domain.tokens)[np.asarray(domain.tokens) < 256].astype(np.uint8))
    assert sorted(val_texts + [tok.decode(domain.tokens[a:b]) for a, b in zip(domain.offsets[:-1], domain.offsets[1:])]) == sorted(docs)
    assert all(v.encode() not in train_bytes for v in val_texts)
    domain.verify_full()


def test_validation_split_rules():
    cfg = IngestConfig()
    docs = lambda n, tokens=1_000: np.full(n, tokens)  # noqa: E731
    assert len(validation_indices(docs(100_000), cfg)) == 1000
    assert len(validation_indices(docs(300), cfg)) == 64
    assert validation_indices(docs(5), cfg).tolist() == [4]  # a tiny domain: its last document
    spread = validation_indices(docs(10_000), cfg)
    assert np.all(np.diff(spread) > 0) and spread[0] < 200 and spread[-1] > 9_800  # spread evenly, no repeats
    with pytest.raises(MixerError, match="at least 2 documents"):
        validation_indices(docs(1), cfg)


def test_held_out_split_holds_tokens_not_just_documents():
    """Short documents: the document rule alone held out 174 tokens of a small cluster;
    the split now holds min_val_tokens, or max_val_share of a small domain."""
    cfg = IngestConfig()
    lines = np.full(7_000, 100)                      # 7,000 short documents, 700k tokens
    held = validation_indices(lines, cfg)
    assert lines[held].sum() >= cfg.min_val_tokens and len(held) == 328
    small = np.full(200, 50)                         # 10k tokens: 10% of them, not 32k
    held = validation_indices(small, cfg)
    assert 0.09 * small.sum() <= small[held].sum() <= 0.1 * small.sum()
    assert np.all(np.diff(held) > 0)


def test_compressed_parquet_and_text_sources_agree(ws, tmp_path):
    docs = synthetic_documents(1, 50, "xyz ")
    lines = "".join(json.dumps({"body": d}) + "\n" for d in docs).encode()
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(lines))
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
    pq.write_table(pa.table({"body": docs}), tmp_path / "a.parquet")
    text_dir = tmp_path / "texts"
    text_dir.mkdir()
    for i, d in enumerate(docs):
        (text_dir / f"{i:03d}.txt").write_text(d)
    (tmp_path / "blocks.txt").write_text("\n\n".join(docs) + "\n")
    hashes = {
        "gz": _add(ws, "gz", tmp_path / "a.jsonl.gz", text_field="body").content_hash,
        "zst": _add(ws, "zst", tmp_path / "a.jsonl.zst", text_field="body").content_hash,
        "parquet": _add(ws, "pq", tmp_path / "a.parquet", text_field="body").content_hash,
        "dir": _add(ws, "dir", text_dir).content_hash,
        "blocks": _add(ws, "blocks", tmp_path / "blocks.txt", split_on_blank_lines=True).content_hash,
    }
    assert len(set(hashes.values())) == 1, hashes


def test_hugging_face_tokenizer_file(ws, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    hf = Tokenizer(models.BPE(unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    docs = synthetic_documents(2, 200, "abcde fghij ")
    hf.train_from_iterator(docs, trainers.BpeTrainer(vocab_size=120, special_tokens=["[UNK]", "</s>"]))
    hf.save(str(tmp_path / "tokenizer.json"))
    meta = _add(ws, "bpe", write_jsonl(tmp_path / "d.jsonl", docs), tokenizer=tmp_path / "tokenizer.json")
    assert meta.tokenizer["kind"] == "hf" and meta.eos_id == hf.token_to_id("</s>")
    assert meta.n_tokens < sum(len(d) for d in docs) / 1.5  # BPE compresses
    with pytest.raises(MixerError, match="share one tokenizer"):
        _add(ws, "bytes", write_jsonl(tmp_path / "e.jsonl", docs[:10]))


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"\x00\x01\x02binary\xff" * 100, "binary file"),
    (b'{"text": "ok"}\n{"text": broken\n', r"bad\.jsonl:2: not valid JSON"),
    (b'{"text": "ok"}\n{"body": "no text"}\n', r"bad\.jsonl:2: no field 'text'"),
])
def test_bad_input_names_file_and_line_and_leaves_workspace_unchanged(ws, tmp_path, content, message):
    _add(ws, "keep", write_jsonl(tmp_path / "keep.jsonl", synthetic_documents(3, 20, "ab ")))
    before = sorted(p.name for p in ws.domains_dir.iterdir())
    (tmp_path / "bad.jsonl").write_bytes(content)
    with pytest.raises(MixerError, match=message):
        _add(ws, "bad", tmp_path / "bad.jsonl")
    assert sorted(p.name for p in ws.domains_dir.iterdir()) == before


@pytest.mark.parametrize("name, content", [
    ("a.jsonl.gz", b""), ("b.jsonl.gz", gzip.compress(b"")), ("c.jsonl.zst", b""),
    ("d.jsonl.zst", zstandard.ZstdCompressor().compress(b"")),
])
def test_an_empty_archive_is_empty_not_corrupt(ws, tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(MixerError, match=rf"{name.replace('.', '[.]')} is empty"):
        _add(ws, "bad", tmp_path / name)


def _cut(data: bytes) -> bytes:
    return data[:len(data) // 2]


@pytest.mark.parametrize("name, content", [
    ("junk.jsonl.gz", b"\x1f\x8bjunk"),
    ("cut.jsonl.gz", _cut(gzip.compress(b'{"text": "a document"}\n' * 2000))),  # a half-finished download
    ("junk.jsonl.zst", b"junk\n"),
    ("cut.jsonl.zst", _cut(zstandard.ZstdCompressor().compress(b'{"text": "a document"}\n' * 2000))),
])
def test_a_corrupt_or_cut_off_archive_is_one_error_naming_it(ws, tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(MixerError, match=rf"{name.replace('.', '[.]')}: corrupt or truncated [.](gz|zst) file"):
        _add(ws, "bad", tmp_path / name)
    assert list(ws.domains_dir.iterdir()) == []


def test_skip_bad_lines_counts_them(ws, tmp_path):
    good = [json.dumps({"text": d}) for d in synthetic_documents(4, 30, "pq ")]
    (tmp_path / "mixed.jsonl").write_text("\n".join(good[:10] + ["{oops"] + good[10:] + ['{"x": 1}']) + "\n")
    meta = _add(ws, "mixed", tmp_path / "mixed.jsonl", skip_bad_lines=True)
    assert meta.bad_lines == 2 and meta.n_docs + meta.n_val_docs == 30


def test_existing_name_needs_replace(ws, tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", synthetic_documents(5, 20, "ab "))
    first = _add(ws, "dup", src)
    with pytest.raises(MixerError, match="already exists; use --replace"):
        _add(ws, "dup", src)
    other = write_jsonl(tmp_path / "b.jsonl", synthetic_documents(6, 20, "cd "))
    second = _add(ws, "dup", other, ingest=IngestConfig(replace=True))
    assert second.content_hash != first.content_hash
    assert Domain.open(ws.domain_dir("dup")).meta.content_hash == second.content_hash


def test_tampered_token_files_are_refused_when_a_loader_opens_them(ws, tmp_path):
    _add(ws, "t", write_jsonl(tmp_path / "t.jsonl", synthetic_documents(7, 40, "ab ")))
    tokens = ws.domain_dir("t") / "tokens.bin"
    raw = bytearray(tokens.read_bytes())
    raw[10] ^= 0xFF
    tokens.write_bytes(bytes(raw))
    with pytest.raises(MixerError, match="do not match the hash"):
        Domain.open(ws.domain_dir("t"))
    tokens.write_bytes(bytes(raw[:-2]))
    with pytest.raises(MixerError, match="meta.json says"):
        Domain.open(ws.domain_dir("t"))


def test_tampered_offsets_are_refused_too(ws, tmp_path):
    import numpy as np

    _add(ws, "o", write_jsonl(tmp_path / "o.jsonl", synthetic_documents(7, 40, "ab ")))
    offsets = ws.domain_dir("o") / "offsets.npy"
    values = np.load(offsets)
    values[3] += 1  # one document boundary moved: the token files are untouched
    np.save(offsets, values)
    with pytest.raises(MixerError, match="do not match the hash"):
        Domain.open(ws.domain_dir("o"))
    with pytest.raises(MixerError, match="content hash mismatch"):
        Domain.open(ws.domain_dir("o"), verify=False).verify_full()


def test_domains_ingested_before_offsets_were_hashed_still_open(ws, tmp_path):
    import json

    from mixer.domain import files_fingerprint

    _add(ws, "legacy", write_jsonl(tmp_path / "l.jsonl", synthetic_documents(7, 40, "ab ")))
    meta_path = ws.domain_dir("legacy") / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.pop("hashed_files"), meta.pop("offsets_hash")
    meta["fingerprint"] = files_fingerprint(ws.domain_dir("legacy"), ["tokens.bin", "val.bin"])
    meta_path.write_text(json.dumps(meta))
    Domain.open(ws.domain_dir("legacy")).verify_full()


@pytest.mark.slow
def test_killed_ingest_leaves_no_half_written_domain(ws, tmp_path):
    big = write_jsonl(tmp_path / "big.jsonl", synthetic_documents(8, 20000, "abcdefghij "))
    code = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        import mixer.ingest as ingest
        from mixer.corpus import AddRequest, add_corpus
        from mixer.workspace import open_workspace
        real = ingest._copy_documents
        def die(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        ingest._copy_documents = die
        add_corpus(open_workspace({str(ws.root)!r}), AddRequest(name="big", sources=[Path({str(big)!r})]))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=os.getcwd())
    assert result.returncode != 0
    assert not ws.domain_dir("big").exists() and list_domains(ws.domains_dir) == []
    _add(ws, "after", write_jsonl(tmp_path / "s.jsonl", synthetic_documents(9, 10, "ab ")))
    assert [p.name for p in ws.domains_dir.iterdir()] == ["after"]  # stale temporaries swept


@needs_corpus
@pytest.mark.slow  # ingests the shared corpus and the built-in text end to end (the fast lane stays under a minute)
def test_shared_corpus_and_builtin_python_ingest_end_to_end(ws):
    for name in ("math", "reviews", "shakespeare", "speeches", "wikipedia"):
        meta = _add(ws, name, CORPUS / f"{name}.jsonl")
        assert meta.n_tokens > 500_000 and meta.n_val_docs >= 2
    meta = add_corpus(ws, AddRequest(name="python", builtin="python", builtin_max_bytes=3_000_000))
    assert meta.n_tokens > 2_000_000
    assert sorted(m.name for m in list_domains(ws.domains_dir)) == ["math", "python", "reviews", "shakespeare", "speeches", "wikipedia"]


def test_a_running_ingests_temporary_folder_survives_another_ingest(ws, tmp_path):
    from mixer.ingest import _temporary_folder, clean_stale_temporaries

    ws.domains_dir.mkdir(parents=True, exist_ok=True)
    mine = _temporary_folder(ws.domains_dir, "busy")  # this process: alive
    mine.mkdir()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = ws.domains_dir / mine.name.replace(mine.name.split("@")[0], f".tmp-{finished.stdout.strip()}")
    dead.mkdir()
    unknown_new = ws.domains_dir / ".tmp-old-format-new"
    unknown_old = ws.domains_dir / ".tmp-old-format-old"
    unknown_new.mkdir()
    unknown_old.mkdir()
    os.utime(unknown_old, (0, 0))
    clean_stale_temporaries(ws.domains_dir)
    assert sorted(p.name for p in ws.domains_dir.iterdir()) == sorted([mine.name, unknown_new.name])
