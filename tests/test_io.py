"""Reading one image file: modes, orientation, size limits and errors that name the file."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image, ImageFile

from sklimg.exceptions import ImageInputError
from sklimg.io import DEFAULT_MAX_PIXELS, check_image_file, read_image


def _save(img: Image.Image, path: Path, **kwargs) -> Path:
    img.save(path, **kwargs)
    return path


def _random_rgb(height=16, width=24, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width x height`` pixels and holds none: a decompression bomb's
    header, a few dozen bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


# ------------------------------------------------------------------ modes and channels
def test_grayscale_png_is_one_channel_uint8(tmp_path):
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    image = read_image(_save(Image.fromarray(pixels, mode="L"), tmp_path / "g.png"))
    assert image.shape == (3, 4, 1) and image.dtype == np.uint8
    assert_array_equal(image[..., 0], pixels)


def test_rgb_png_round_trips_exactly(tmp_path):
    pixels = _random_rgb()
    image = read_image(str(_save(Image.fromarray(pixels), tmp_path / "c.png")))
    assert image.dtype == np.uint8
    assert_array_equal(image, pixels)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 40, 0)
    rgba[..., 3] = [[255, 0, 128], [64, 255, 0]]
    image = read_image(_save(Image.fromarray(rgba, mode="RGBA"), tmp_path / "a.png"))
    assert image.shape == (2, 3, 3) and image.dtype == np.uint8
    # Independent: Pillow's own compositing onto an opaque white background.
    white = Image.new("RGBA", (3, 2), (255, 255, 255, 255))
    expected = np.asarray(Image.alpha_composite(white, Image.fromarray(rgba, mode="RGBA")))
    assert_allclose(image, expected[..., :3], atol=1)
    assert_array_equal(image[0, 0], (200, 40, 0))  # opaque: unchanged
    assert_array_equal(image[0, 1], (255, 255, 255))  # transparent: white


def test_gray_with_alpha_stays_one_channel(tmp_path):
    la = np.stack([np.full((2, 2), 10, np.uint8), np.array([[255, 0], [0, 255]], np.uint8)], -1)
    image = read_image(_save(Image.fromarray(la, mode="LA"), tmp_path / "la.png"))
    assert image.shape == (2, 2, 1)
    assert_array_equal(image[..., 0], [[10, 255], [255, 10]])


def test_palette_becomes_rgb(tmp_path):
    img = Image.new("P", (3, 2))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((1, 0), 1)
    image = read_image(_save(img, tmp_path / "p.png"))
    assert image.shape == (2, 3, 3)
    assert_array_equal(image[0, 0], (255, 0, 0))
    assert_array_equal(image[0, 1], (0, 0, 255))


def test_palette_transparency_is_white(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.putpixel((1, 0), 1)
    image = read_image(_save(img, tmp_path / "pt.png", transparency=0))
    assert_array_equal(image[0], [(255, 255, 255), (0, 255, 0)])


def test_sixteen_bit_png_is_float_in_unit_range(tmp_path):
    pixels = np.array([[0, 1000, 65535]], dtype=np.uint16)
    img = Image.fromarray(pixels)
    assert img.mode == "I;16"
    image = read_image(_save(img, tmp_path / "16.png"))
    assert image.shape == (1, 3, 1) and image.dtype == np.float32
    assert_allclose(image[..., 0], pixels / 65535, rtol=1e-6)


def test_32_bit_integer_tiff_in_16_bit_range_is_scaled(tmp_path):
    img = Image.fromarray(np.array([[0, 65535]], dtype=np.int32), mode="I")
    image = read_image(_save(img, tmp_path / "i.tif"))
    assert_allclose(image[..., 0], [[0.0, 1.0]])


def test_32_bit_integer_tiff_out_of_range_is_refused(tmp_path):
    img = Image.fromarray(np.array([[-1, 70000]], dtype=np.int32), mode="I")
    with pytest.raises(
        ImageInputError, match=r"^Image file '.*i\.tif' holds 32-bit .* outside the 16-bit range"
    ):
        read_image(_save(img, tmp_path / "i.tif"))


def test_float_tiff_is_read_as_stored(tmp_path):
    pixels = np.array([[-0.5, 2.25]], dtype=np.float32)
    image = read_image(_save(Image.fromarray(pixels, mode="F"), tmp_path / "f.tif"))
    assert image.dtype == np.float32
    assert_array_equal(image[..., 0], pixels)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = _save(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), tmp_path / "cmyk.jpg", quality=95)
    with Image.open(path) as img:
        assert img.mode == "CMYK"
    image = read_image(path)
    assert image.shape == (8, 8, 3) and image.dtype == np.uint8
    assert_allclose(image.reshape(-1, 3).mean(axis=0), (255, 0, 0), atol=3)  # red


def test_one_bit_image_is_0_or_255(tmp_path):
    bits = np.array([[True, False], [False, True]])
    image = read_image(_save(Image.fromarray(bits), tmp_path / "b.png"))
    assert image.shape == (2, 2, 1) and image.dtype == np.uint8
    assert_array_equal(image[..., 0], bits * 255)


@pytest.mark.parametrize(("orientation", "k"), [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path, orientation, k):
    # Four 8x8 blocks of distinct colours, aligned to JPEG's 8x8 blocks and saved
    # without chroma subsampling, survive compression nearly exactly.
    colours = np.array([[(255, 0, 0), (0, 255, 0)], [(0, 0, 255), (255, 255, 0)]], np.uint8)
    stored = np.kron(colours, np.ones((8, 16, 1), dtype=np.uint8))  # 16 x 32
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(
        Image.fromarray(stored), tmp_path / "photo.jpg", exif=exif, quality=100, subsampling=0
    )
    check_height, check_width = check_image_file(path)
    image = read_image(path)
    # Orientation 6 means "rotate 90 degrees clockwise to display", 8 counter-clockwise.
    expected = np.rot90(stored, k=k)
    assert (check_height, check_width) == stored.shape[:2]  # the header: as stored
    assert image.shape == expected.shape
    assert_allclose(image, expected, atol=12)


def test_path_objects_and_strings_are_accepted(tmp_path):
    path = _save(Image.new("L", (2, 3)), tmp_path / "x.png")
    assert_array_equal(read_image(path), read_image(str(path)))
    assert check_image_file(path) == check_image_file(str(path)) == (3, 2)


# ------------------------------------------------------------------ bad files
def test_missing_file(tmp_path):
    with pytest.raises(ImageInputError, match=r"'.*nope\.png' does not exist"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageInputError, match=r"nope\.png' does not exist"):
        check_image_file(tmp_path / "nope.png")


def test_directory(tmp_path):
    with pytest.raises(ImageInputError, match="is a directory, not an image file"):
        read_image(tmp_path)
    with pytest.raises(ImageInputError, match="is a directory"):
        check_image_file(tmp_path)


def test_text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image\n")
    with pytest.raises(ImageInputError, match=r"notes\.txt' is not an image file"):
        read_image(path)
    with pytest.raises(ImageInputError, match=r"notes\.txt' is not an image file"):
        check_image_file(path)


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_truncated_file_fails_when_decoded(tmp_path, suffix):
    whole = _save(Image.fromarray(_random_rgb(64, 64)), tmp_path / f"whole.{suffix}")
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    # The header is intact, so the header-only check passes; decoding finds the damage.
    assert check_image_file(cut) == (64, 64)
    with pytest.raises(ImageInputError, match=rf"cut\.{suffix}'.*truncated.*damaged or incomplete"):
        read_image(cut)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_image_over_max_pixels_is_refused_before_decoding(tmp_path):
    path = _save(Image.new("RGB", (20, 10)), tmp_path / "big.png")
    for check in (read_image, check_image_file):
        with pytest.raises(
            ImageInputError,
            match=r"^Image file '.*big\.png' is 20 x 10 = 200 pixels.*max_pixels=None",
        ):
            check(path, max_pixels=199)
    assert read_image(path, max_pixels=200).shape == (10, 20, 3)
    assert read_image(path, max_pixels=None).shape == (10, 20, 3)


def test_decompression_bomb_header_is_refused_without_decoding(tmp_path):
    # 12000 x 9000 is over sklimg's default limit and over Pillow's warning threshold
    # (whose DecompressionBombWarning must not escape: warnings are errors here).
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(12_000, 9_000))
    assert 12_000 * 9_000 > DEFAULT_MAX_PIXELS
    with pytest.raises(
        ImageInputError, match=r"^Image file '.*bomb\.png' is 12000 x 9000 = 108,000,000"
    ):
        read_image(path)
    with pytest.raises(ImageInputError, match="decompression bombs"):
        check_image_file(path)


def test_pillow_hard_limit_becomes_a_clear_error(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(_png_header(50_000, 50_000))  # over 2 * Pillow's MAX_IMAGE_PIXELS
    with pytest.raises(ImageInputError, match=r"huge\.png' is over Pillow's own size limit"):
        read_image(path, max_pixels=None)
    with pytest.raises(ImageInputError, match=r"PIL\.Image\.MAX_IMAGE_PIXELS = None"):
        check_image_file(path, max_pixels=None)


def test_pillow_warning_does_not_leak_when_sklimg_allows_the_size(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = _save(Image.new("L", (12, 12)), tmp_path / "ok.png")  # 144: Pillow would warn
    assert read_image(path, max_pixels=None).shape == (12, 12, 1)
    assert check_image_file(path, max_pixels=None) == (12, 12)


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "many"])
def test_invalid_max_pixels(tmp_path, bad):
    path = _save(Image.new("L", (2, 2)), tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"max_pixels must be a positive integer .* got"):
        read_image(path, max_pixels=bad)
    with pytest.raises(ValueError, match="max_pixels must be a positive integer"):
        check_image_file(path, max_pixels=bad)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _raw_profile_png(path: Path, image: Image.Image, orientation: int) -> None:
    """A PNG whose orientation is in ImageMagick's text chunk, not an eXIf chunk."""
    from PIL import PngImagePlugin

    raw = _exif(orientation).tobytes()
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", f"\nexif\n{len(raw)}\n{raw.hex()}")
    image.save(path, pnginfo=info)


def _xmp_png(path: Path, image: Image.Image, orientation: int) -> None:
    from PIL import PngImagePlugin

    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
        '02/22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
        f' tiff:Orientation="{orientation}"/></rdf:RDF></x:xmpmeta>'
    )
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    image.save(path, pnginfo=info)


RGB = Image.fromarray(_random_rgb(height=30, width=40))
SHAPE_CASES = {
    "png rgb": lambda p: RGB.save(p.with_suffix(".png")),
    "png gray": lambda p: RGB.convert("L").save(p.with_suffix(".png")),
    "png rgba": lambda p: RGB.convert("RGBA").save(p.with_suffix(".png")),
    "png palette": lambda p: RGB.convert("P").save(p.with_suffix(".png")),
    "png 16-bit": lambda p: RGB.convert("I;16").save(p.with_suffix(".png")),
    "png exif 6": lambda p: RGB.save(p.with_suffix(".png"), exif=_exif(6)),
    "png raw profile 6": lambda p: _raw_profile_png(p.with_suffix(".png"), RGB, 6),
    "png xmp 8": lambda p: _xmp_png(p.with_suffix(".png"), RGB, 8),
    "jpeg exif 3": lambda p: RGB.save(p.with_suffix(".jpg"), exif=_exif(3)),
    "jpeg exif 6": lambda p: RGB.save(p.with_suffix(".jpg"), exif=_exif(6)),
    "jpeg gray exif 8": lambda p: RGB.convert("L").save(p.with_suffix(".jpg"), exif=_exif(8)),
    "jpeg cmyk": lambda p: RGB.convert("CMYK").save(p.with_suffix(".jpg")),
    "tiff exif 6": lambda p: RGB.save(p.with_suffix(".tif"), tiffinfo={0x0112: 6}),
    "tiff rgba": lambda p: RGB.convert("RGBA").save(p.with_suffix(".tif")),
    "webp exif 6": lambda p: RGB.save(p.with_suffix(".webp"), exif=_exif(6)),
    "gif": lambda p: RGB.convert("P").save(p.with_suffix(".gif")),
    "bmp": lambda p: RGB.save(p.with_suffix(".bmp")),
}


@pytest.mark.parametrize("case", list(SHAPE_CASES))
def test_decoded_shape_is_the_shape_read_image_returns(tmp_path, case):
    """The shape check before training reads headers only; it must agree with what
    decoding gives, rotation and channels included."""
    from sklimg.io import decoded_shape

    SHAPE_CASES[case](tmp_path / "image")
    (path,) = tmp_path.iterdir()
    assert decoded_shape(path) == read_image(path).shape


# ------------------------------------------------------------------ decode_image (bytes)
@pytest.mark.parametrize("case", list(SHAPE_CASES))
def test_decode_image_gives_what_read_image_gives_for_the_file(tmp_path, case):
    from sklimg.io import decode_image

    SHAPE_CASES[case](tmp_path / "image")
    (path,) = tmp_path.iterdir()
    expected = read_image(path)
    got = decode_image(path.read_bytes(), name=path.name)
    assert got.dtype == expected.dtype
    assert_array_equal(got, expected)


def test_decode_image_errors_name_the_image_and_the_problem(tmp_path):
    from sklimg.io import decode_image

    whole = _save(Image.fromarray(_random_rgb(64, 64)), tmp_path / "whole.png").read_bytes()
    cases = {
        b"": r"^'upload\.png' is empty \(0 bytes\)",
        b"these are not pixels": r"^'upload\.png' is not an image file Pillow can read",
        whole[: len(whole) // 2]: r"'upload\.png'.*truncated.*damaged or incomplete",
        _png_header(12_000, 9_000): r"^Image file 'upload\.png' is 12000 x 9000 = 108,000,000",
    }
    for data, message in cases.items():
        with pytest.raises(ImageInputError, match=message):
            decode_image(data, name="upload.png")
    with pytest.raises(ImageInputError, match=r"'the image' is 64 x 64 = 4,096 pixels"):
        decode_image(memoryview(whole), max_pixels=4_095)
    assert decode_image(bytearray(whole), max_pixels=4_096).shape == (64, 64, 3)
    with pytest.raises(ValueError, match="max_pixels must be a positive integer"):
        decode_image(whole, max_pixels=0)


def test_decode_image_refuses_a_path_and_says_which_function_reads_it(tmp_path):
    from sklimg.io import decode_image

    path = _save(Image.fromarray(_random_rgb()), tmp_path / "photo.png")
    for source in (path, str(path)):
        with pytest.raises(TypeError, match=r"got (PosixPath|str).*sklimg\.io\.read_image"):
            decode_image(source)
