"""One conformance suite for every storage backend: the local folder (in tmp_path) and S3
(against moto's real HTTP server on 127.0.0.1, one fresh bucket per test, started once for the
session and stopped at its end). Then what only one backend has: local atomic writes and path
confinement; S3 errors for a missing bucket or an unreachable endpoint; `from_settings`.
"""

import io
import os
import pathlib
import random
import socket
import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

from app import config, storage
from app.storage import base, errors, local, s3

MIB = 2**20
DUMMY_KEYS = {"S3_ACCESS_KEY_ID": "testing", "S3_SECRET_ACCESS_KEY": "testing"}
BAD_KEYS = [
    "",
    "/tasks/a",
    "tasks/../a",
    "..",
    "tasks//a",
    "tasks/./a",
    "tasks/a/",
    "tasks\\a",
    "tasks/a\x00b",
    "tasks/a\nb",
    "tasks/.partial-0123",
    "tasks/" + "x" * 256,
    "/".join(["abcdefgh"] * 120),
]
BAD_PREFIXES = ["", "/", "/tasks", "tasks/../x", "tasks//a", ".."]


@pytest.fixture(scope="session")
def moto_url():
    """The URL of a moto S3 server on 127.0.0.1, stopped when the session ends."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def admin(moto_url):
    """A plain boto3 client on the moto server, to set up and inspect buckets."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    return session.client("s3", endpoint_url=moto_url, region_name="us-east-1")


@pytest.fixture
def bucket(admin) -> str:
    """A fresh, empty bucket on the moto server."""
    name = f"conveyor-{uuid.uuid4().hex[:12]}"
    admin.create_bucket(Bucket=name)
    return name


def _settings(tmp_path: pathlib.Path, **overrides) -> dict:
    """Settings as the app loads them, from no environment."""
    return config.load({}, {"CONVEYOR_VAR_DIR": str(tmp_path / "var"), **overrides})


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path) -> base.Storage:
    """Each backend in turn; S3 lists two keys per page so every listing pages."""
    if request.param == "local":
        return local.LocalStorage(tmp_path / "artifacts")
    moto_url, bucket = request.getfixturevalue("moto_url"), request.getfixturevalue("bucket")
    settings = _settings(tmp_path, CONVEYOR_STORAGE="s3", S3_BUCKET=bucket, S3_ENDPOINT_URL=moto_url, **DUMMY_KEYS)
    return s3.S3Storage.from_settings(settings, page_size=2)


def _put(store: base.Storage, key: str, data: bytes) -> int:
    return store.put_stream(key, io.BytesIO(data))


def _read(store: base.Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(store.read_range(key, start, end))


def _file(tmp_path: pathlib.Path, data: bytes, name: str = "source.bin") -> pathlib.Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# The conformance suite: every test runs on every backend.


def test_put_file_stores_a_copy(store, tmp_path):
    source = _file(tmp_path, b"hello, world")
    assert store.put_file("tasks/t1/1/hello.txt", source, mime="text/plain") == 12
    assert source.read_bytes() == b"hello, world"
    assert store.exists("tasks/t1/1/hello.txt")
    assert store.size("tasks/t1/1/hello.txt") == 12
    assert _read(store, "tasks/t1/1/hello.txt") == b"hello, world"


def test_put_stream_returns_the_size(store):
    assert store.put_stream("uploads/acc/u1/source.mp4", io.BytesIO(b"abc" * 1000), mime="video/mp4") == 3000
    assert store.size("uploads/acc/u1/source.mp4") == 3000


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, slice(0, 100)),
        (0, 0, slice(0, 1)),
        (10, 19, slice(10, 20)),
        (99, 99, slice(99, 100)),
        (40, None, slice(40, 100)),
        (90, 10_000, slice(90, 100)),  # an end past the object is clipped, as in HTTP
        (100, None, slice(0, 0)),  # a start at the end yields nothing
        (150, 200, slice(0, 0)),
    ],
)
def test_read_range_returns_inclusive_ranges(store, start, end, expected):
    data = bytes(range(100))
    _put(store, "tasks/t1/1/data.bin", data)
    assert _read(store, "tasks/t1/1/data.bin", start, end) == data[expected]


def test_read_range_yields_chunks_of_at_most_chunk_size(store):
    data = bytes(range(256)) * 10
    _put(store, "tasks/t1/1/data.bin", data)
    chunks = list(store.read_range("tasks/t1/1/data.bin", 5, 2000, chunk_size=300))
    assert b"".join(chunks) == data[5:2001]
    assert max(len(chunk) for chunk in chunks) <= 300
    assert len(chunks) >= 7


def test_read_range_can_stop_early(store):
    _put(store, "tasks/t1/1/data.bin", b"x" * 1000)
    chunks = store.read_range("tasks/t1/1/data.bin", chunk_size=100)
    assert next(chunks) == b"x" * 100
    chunks.close()
    assert list(chunks) == []


@pytest.mark.parametrize(("start", "end"), [(-1, None), (-5, 3), (10, 9)])
def test_read_range_rejects_impossible_ranges(store, start, end):
    _put(store, "tasks/t1/1/data.bin", b"x" * 100)
    with pytest.raises(ValueError, match="byte range"):
        store.read_range("tasks/t1/1/data.bin", start, end)


def test_a_reader_keeps_the_bytes_it_started_with(store):
    # Overwriting replaces the whole object at once: an open read never mixes old and new.
    _put(store, "tasks/t1/1/clip.mp4", b"a" * 5000)
    chunks = store.read_range("tasks/t1/1/clip.mp4", chunk_size=1000)
    first = next(chunks)
    _put(store, "tasks/t1/1/clip.mp4", b"b" * 7000)
    assert first + b"".join(chunks) == b"a" * 5000
    assert _read(store, "tasks/t1/1/clip.mp4") == b"b" * 7000


def test_empty_object(store):
    assert _put(store, "tasks/t1/1/empty.txt", b"") == 0
    assert store.exists("tasks/t1/1/empty.txt")
    assert store.size("tasks/t1/1/empty.txt") == 0
    assert _read(store, "tasks/t1/1/empty.txt") == b""
    assert _read(store, "tasks/t1/1/empty.txt", 0, 10) == b""


def test_fetch_copies_to_a_local_file(store, tmp_path):
    data = os.urandom(70_000)
    _put(store, "uploads/acc/u1/source.mp4", data)
    dest = tmp_path / "work" / "source.mp4"
    dest.parent.mkdir()
    assert store.fetch("uploads/acc/u1/source.mp4", dest) == 70_000
    assert dest.read_bytes() == data
    assert store.fetch("uploads/acc/u1/source.mp4", str(dest)) == 70_000


def test_overwrite_replaces_the_content(store, tmp_path):
    _put(store, "tasks/t1/1/out.txt", b"the first, longer content")
    assert store.put_file("tasks/t1/1/out.txt", _file(tmp_path, b"second")) == 6
    assert store.size("tasks/t1/1/out.txt") == 6
    assert _read(store, "tasks/t1/1/out.txt") == b"second"
    assert store.list("tasks/t1/1") == ["tasks/t1/1/out.txt"]


def test_delete_removes_one_object(store):
    _put(store, "tasks/t1/1/a.txt", b"a")
    _put(store, "tasks/t1/1/b.txt", b"b")
    store.delete("tasks/t1/1/a.txt")
    assert not store.exists("tasks/t1/1/a.txt")
    assert store.list("tasks/t1") == ["tasks/t1/1/b.txt"]
    store.delete("tasks/t1/1/a.txt")  # already gone: not an error
    store.delete("tasks/never/1/x.txt")


def test_delete_prefix_deletes_only_under_the_folder(store):
    inside = ["tasks/t1/1/a.txt", "tasks/t1/1/b.txt", "tasks/t1/1/sub/c.txt", "tasks/t1/1/sub/d.txt"]
    inside += [f"tasks/t1/1/many/{n}.txt" for n in range(5)]
    outside = ["tasks/t1/10/a.txt", "tasks/t1/2/a.txt", "tasks/t10/1/a.txt", "tasks/t1/1.txt", "uploads/t1/1/a"]
    for key in inside + outside:
        _put(store, key, key.encode())
    assert store.delete_prefix("tasks/t1/1") == len(inside)
    assert all(not store.exists(key) for key in inside)
    assert store.list("tasks") == sorted(k for k in outside if k.startswith("tasks/"))
    assert _read(store, "tasks/t1/10/a.txt") == b"tasks/t1/10/a.txt"
    assert store.delete_prefix("tasks/t1/1") == 0


def test_delete_prefix_accepts_a_trailing_slash(store):
    for n in range(3):
        _put(store, f"tasks/t2/{n}/out.txt", b"x")
    _put(store, "tasks/t20/0/out.txt", b"x")
    assert store.delete_prefix("tasks/t2/") == 3
    assert store.list("tasks/") == ["tasks/t20/0/out.txt"]


def test_list_returns_the_sorted_keys_under_the_folder(store):
    keys = ["uploads/acc/u2/b.bin", "uploads/acc/u1/z.bin", "uploads/acc/u1/a.bin", "uploads/acc/u1/deep/er/x"]
    for key in [*keys, "uploads/acc2/u1/a.bin", "uploads/acc.bin"]:
        _put(store, key, b"x")
    assert store.list("uploads/acc") == sorted(keys)
    assert store.list("uploads/acc/u1") == sorted(k for k in keys if k.startswith("uploads/acc/u1/"))
    assert store.list("uploads/acc/u1/a.bin") == []  # a key is not a folder
    assert store.list("uploads/nobody") == []


def test_absent_keys_raise_missing(store, tmp_path):
    dest = tmp_path / "dest.bin"
    for call in (
        lambda: store.size("tasks/none/1/a"),
        lambda: store.read_range("tasks/none/1/a"),  # at the call, before any chunk is asked for
        lambda: store.read_range("tasks/none/1/a", 5, 10),
        lambda: store.fetch("tasks/none/1/a", dest),
    ):
        with pytest.raises(errors.Missing) as caught:
            call()
        assert caught.value.key == "tasks/none/1/a"
        assert isinstance(caught.value, LookupError)
        assert isinstance(caught.value, errors.StorageError)
    assert not dest.exists()
    assert not store.exists("tasks/none/1/a")


def test_a_folder_is_not_an_object(store):
    _put(store, "tasks/t1/1/a.txt", b"a")
    assert not store.exists("tasks/t1/1")
    with pytest.raises(errors.Missing):
        store.size("tasks/t1/1")


def test_put_stream_past_max_bytes_stores_nothing(store):
    with pytest.raises(errors.TooLarge) as caught:
        store.put_stream("uploads/acc/u1/big.bin", io.BytesIO(b"x" * 101), max_bytes=100)
    assert caught.value.max_bytes == 100
    assert not store.exists("uploads/acc/u1/big.bin")
    assert store.list("uploads/acc") == []
    assert store.put_stream("uploads/acc/u1/big.bin", io.BytesIO(b"x" * 100), max_bytes=100) == 100


def test_put_stream_past_max_bytes_keeps_the_older_object(store):
    _put(store, "uploads/acc/u1/source.bin", b"old")
    with pytest.raises(errors.TooLarge):
        store.put_stream("uploads/acc/u1/source.bin", io.BytesIO(b"n" * 50), max_bytes=10)
    assert _read(store, "uploads/acc/u1/source.bin") == b"old"
    assert store.list("uploads/acc/u1") == ["uploads/acc/u1/source.bin"]


def test_put_file_from_a_missing_path_raises_and_stores_nothing(store, tmp_path):
    with pytest.raises(FileNotFoundError):
        store.put_file("tasks/t1/1/a.txt", tmp_path / "nowhere.txt")
    assert not store.exists("tasks/t1/1/a.txt")


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_rejected(store, tmp_path, key):
    source = _file(tmp_path, b"x")
    calls = [
        lambda: store.put_file(key, source),
        lambda: store.put_stream(key, io.BytesIO(b"x")),
        lambda: store.size(key),
        lambda: store.read_range(key),
        lambda: store.fetch(key, tmp_path / "dest"),
        lambda: store.delete(key),
        lambda: store.exists(key),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="storage key"):
            call()


@pytest.mark.parametrize("prefix", BAD_PREFIXES)
def test_bad_prefixes_are_rejected(store, prefix):
    _put(store, "tasks/t1/1/a.txt", b"a")
    with pytest.raises(ValueError, match="storage key"):
        store.list(prefix)
    with pytest.raises(ValueError, match="storage key"):
        store.delete_prefix(prefix)
    assert store.exists("tasks/t1/1/a.txt")


def test_unusual_but_valid_names_round_trip(store):
    keys = ["uploads/acc/u1/my clip (final) é.mp4", "uploads/acc/u1/a+b=c&d?.txt", "uploads/acc/u1/.hidden", "x"]
    for key in keys:
        _put(store, key, key.encode())
    for key in keys:
        assert _read(store, key) == key.encode()
    assert store.list("uploads/acc/u1") == sorted(keys[:3])


def test_every_byte_value_round_trips(store, tmp_path):
    data = bytes(range(256)) * 4 + bytes(reversed(range(256)))
    store.put_file("tasks/t1/1/bytes.bin", _file(tmp_path, data), mime="application/octet-stream")
    _put(store, "tasks/t1/1/bytes2.bin", data)
    for key in ("tasks/t1/1/bytes.bin", "tasks/t1/1/bytes2.bin"):
        assert _read(store, key) == data
        assert _read(store, key, 250, 260) == data[250:261]
    store.fetch("tasks/t1/1/bytes.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data


def test_a_9_mib_object_round_trips(store, tmp_path):
    # Past boto3's 8 MiB multipart threshold, so S3 uploads it in parts.
    data = random.Random(7).randbytes(9 * MIB + 123)
    assert store.put_file("tasks/t1/1/big.bin", _file(tmp_path, data)) == len(data)
    assert store.size("tasks/t1/1/big.bin") == len(data)
    back = tmp_path / "back.bin"
    assert store.fetch("tasks/t1/1/big.bin", back) == len(data)
    assert back.read_bytes() == data
    assert _read(store, "tasks/t1/1/big.bin", 8 * MIB - 10, 8 * MIB + 10) == data[8 * MIB - 10 : 8 * MIB + 11]


def test_a_large_stream_past_max_bytes_stores_nothing(store):
    # 9 MiB: on S3 boto3 starts a multipart upload, which must be aborted.
    with pytest.raises(errors.TooLarge):
        store.put_stream("uploads/acc/u1/big.bin", io.BytesIO(bytes(9 * MIB)), max_bytes=8 * MIB + 1)
    assert store.list("uploads/acc") == []


def test_chunks_report_an_object_that_ends_early():
    chunks = base.Chunks(io.BytesIO(b"abc"), 5, chunk_size=2)
    assert next(chunks) == b"ab"
    assert next(chunks) == b"c"
    with pytest.raises(errors.StorageError, match="ended 2 bytes early"):
        next(chunks)


# The local backend only.


def test_local_writes_leave_no_temporary_files(tmp_path):
    store = local.LocalStorage(tmp_path / "root")
    _put(store, "tasks/t1/1/a.txt", b"a")
    store.put_file("tasks/t1/1/b.txt", _file(tmp_path, b"b"))
    with pytest.raises(errors.TooLarge):
        store.put_stream("tasks/t1/1/c.txt", io.BytesIO(b"ccc"), max_bytes=2)
    assert sorted(p.name for p in (tmp_path / "root" / "tasks" / "t1" / "1").iterdir()) == ["a.txt", "b.txt"]


def test_local_temporary_files_are_not_listed_but_are_deleted(tmp_path):
    store = local.LocalStorage(tmp_path / "root")
    _put(store, "tasks/t1/1/a.txt", b"a")
    stray = tmp_path / "root" / "tasks" / "t1" / "1" / f"{base.TEMP_PREFIX}dead"
    stray.write_bytes(b"left by a crash")
    assert store.list("tasks/t1") == ["tasks/t1/1/a.txt"]
    assert store.delete_prefix("tasks/t1") == 1
    assert not stray.exists()


def test_local_deletes_remove_empty_folders(tmp_path):
    store = local.LocalStorage(tmp_path / "root")
    _put(store, "tasks/t1/1/sub/a.txt", b"a")
    _put(store, "uploads/acc/u1/source.mp4", b"v")
    _put(store, "uploads/acc/u2/source.mp4", b"v")
    store.delete_prefix("tasks/t1")
    store.delete("uploads/acc/u1/source.mp4")
    assert sorted(str(p.relative_to(tmp_path / "root")) for p in (tmp_path / "root").rglob("*")) == [
        "uploads",
        "uploads/acc",
        "uploads/acc/u2",
        "uploads/acc/u2/source.mp4",
    ]
    _put(store, "tasks/t1/2/a.txt", b"again")  # the folders come back on the next write
    assert store.list("tasks/t1") == ["tasks/t1/2/a.txt"]


def test_local_keys_cannot_leave_the_root_through_a_symlink(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    store = local.LocalStorage(root)
    with pytest.raises(ValueError, match="outside"):
        store.read_range("link/secret.txt")
    with pytest.raises(ValueError, match="outside"):
        _put(store, "link/new.txt", b"x")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_local_errors_of_the_store_are_storage_errors(tmp_path):
    store = local.LocalStorage(tmp_path / "root")
    _put(store, "tasks/t1", b"a file where a folder is wanted")
    with pytest.raises(errors.StorageError, match=r"tasks/t1/1/a\.txt") as caught:
        _put(store, "tasks/t1/1/a.txt", b"x")
    assert not isinstance(caught.value, errors.Missing)


# The S3 backend only.


def test_s3_keeps_the_mime_type(moto_url, admin, bucket, tmp_path):
    store = s3.S3Storage(bucket, endpoint_url=moto_url, region="us-east-1", access_key_id="k", secret_access_key="s")
    store.put_file("tasks/t1/1/a.mp4", _file(tmp_path, b"v"), mime="video/mp4")
    store.put_stream("tasks/t1/1/b.json", io.BytesIO(b"{}"), mime="application/json")
    head = admin.head_object
    assert head(Bucket=bucket, Key="tasks/t1/1/a.mp4")["ContentType"] == "video/mp4"
    assert head(Bucket=bucket, Key="tasks/t1/1/b.json")["ContentType"] == "application/json"


def test_s3_aborts_the_multipart_upload_of_a_stream_past_max_bytes(moto_url, admin, bucket):
    store = s3.S3Storage(bucket, endpoint_url=moto_url, region="us-east-1", access_key_id="k", secret_access_key="s")
    with pytest.raises(errors.TooLarge):
        store.put_stream("uploads/acc/u1/big.bin", io.BytesIO(bytes(17 * MIB)), max_bytes=16 * MIB + 1)
    assert admin.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_s3_missing_bucket_is_a_storage_error_naming_it(moto_url, tmp_path):
    store = s3.S3Storage(
        "conveyor-no-such-bucket", endpoint_url=moto_url, region="us-east-1", access_key_id="k", secret_access_key="s"
    )
    calls = [
        lambda: store.put_file("tasks/t1/1/a", _file(tmp_path, b"x")),
        lambda: store.put_stream("tasks/t1/1/a", io.BytesIO(b"x")),
        lambda: store.size("tasks/t1/1/a"),  # HEAD gets a bare 404, as for a missing key
        lambda: store.exists("tasks/t1/1/a"),
        lambda: store.read_range("tasks/t1/1/a"),
        lambda: store.fetch("tasks/t1/1/a", tmp_path / "dest"),
        lambda: store.delete("tasks/t1/1/a"),
        lambda: store.delete_prefix("tasks/t1"),
        lambda: store.list("tasks"),
    ]
    for call in calls:
        with pytest.raises(errors.StorageError, match="bucket 'conveyor-no-such-bucket' does not exist") as caught:
            call()
        assert not isinstance(caught.value, errors.Missing)


def test_s3_unreachable_endpoint_is_a_storage_error_naming_the_object(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now; one attempt so botocore does not back off and retry.
    store = s3.S3Storage(
        "conveyor-bucket",
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        access_key_id="k",
        secret_access_key="s",
        max_attempts=1,
    )
    with pytest.raises(errors.StorageError, match=r"s3://conveyor-bucket/tasks/t1/1/a at http://127\.0\.0\.1"):
        store.size("tasks/t1/1/a")
    with pytest.raises(errors.StorageError, match="s3://conveyor-bucket/tasks/t1/1/a"):
        store.put_file("tasks/t1/1/a", _file(tmp_path, b"x"))


def test_s3_needs_both_keys_or_neither():
    with pytest.raises(errors.StorageError, match="S3_SECRET_ACCESS_KEY"):
        s3.S3Storage("conveyor-bucket", access_key_id="only-the-id")


# Choosing the backend.


def test_from_settings_defaults_to_a_local_folder_under_var(tmp_path):
    store = storage.from_settings(_settings(tmp_path))
    assert isinstance(store, local.LocalStorage)
    assert store.root == tmp_path / "var" / "artifacts"
    _put(store, "tasks/t1/1/a.txt", b"a")
    assert (tmp_path / "var" / "artifacts" / "tasks" / "t1" / "1" / "a.txt").read_bytes() == b"a"


def test_from_settings_honours_the_storage_dir(tmp_path):
    store = storage.from_settings(_settings(tmp_path, CONVEYOR_STORAGE_DIR=str(tmp_path / "elsewhere")))
    _put(store, "tasks/t1/1/a.txt", b"a")
    assert (tmp_path / "elsewhere" / "tasks" / "t1" / "1" / "a.txt").read_bytes() == b"a"


def test_from_settings_builds_s3_from_the_s3_settings(moto_url, admin, bucket, tmp_path):
    settings = _settings(tmp_path, CONVEYOR_STORAGE="s3", S3_BUCKET=bucket, S3_ENDPOINT_URL=moto_url, **DUMMY_KEYS)
    store = storage.from_settings(settings)
    assert isinstance(store, s3.S3Storage)
    assert isinstance(store, storage.Storage)
    assert store.bucket == bucket
    _put(store, "tasks/t1/1/a.txt", b"in the bucket")
    assert admin.get_object(Bucket=bucket, Key="tasks/t1/1/a.txt")["Body"].read() == b"in the bucket"
    assert not (tmp_path / "var" / "artifacts").exists()


def test_from_settings_rejects_an_unknown_backend(tmp_path):
    with pytest.raises(ValueError, match="CONVEYOR_STORAGE"):
        storage.from_settings({**_settings(tmp_path), "CONVEYOR_STORAGE": "ftp"})
