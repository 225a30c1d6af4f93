"""HEIC and AVIF photos for the Rust tests (issue 17 §1), made and read with
pillow-heif (libheif) and Pillow's own AVIF plugin. Reads one JSON request on
stdin and prints one JSON answer.

  {"op": "make", "format": "HEIF"|"AVIF"}
      -> {"hex": the file, "markers": [strings its EXIF and XMP hold]}
      A 64x48 photo with EXIF (camera make, serial, a GPS position) and XMP.
  {"op": "check", "original": hex, "stored": hex}
      -> {"size": [w, h], "original_size": [w, h], "same_pixels": bool,
          "exif_tags": [tag ids left], "gps": {...left}, "xmp": str,
          "original_exif_tags": [...], "original_gps_tags": [...]}
"""
import io
import json
import sys

import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()

MARKERS = ["CameraMakerMARK", "SerialNumberMARK", "XmpCreatorMARK", "XmpGpsMARK"]

XMP = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"'
    ' xmlns:exif="http://ns.adobe.com/exif/1.0/"'
    ' dc:creator="XmpCreatorMARK" exif:GPSAreaInformation="XmpGpsMARK"'
    ' exif:GPSLatitude="48,51.48N" exif:GPSLongitude="2,17.67E"/>'
    "</rdf:RDF></x:xmpmeta>"
    '<?xpacket end="w"?>'
).encode()


def make(fmt):
    im = Image.new("RGB", (64, 48))
    im.putdata([(x * 4, y * 5, (x + y) * 2) for y in range(48) for x in range(64)])
    exif = Image.Exif()
    exif[0x010F] = "CameraMakerMARK"  # Make
    exif[0x0132] = "2026:11:30 08:00:00"  # DateTime
    exif.get_ifd(0x8769)[0xA431] = "SerialNumberMARK"  # BodySerialNumber
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    out = io.BytesIO()
    im.save(out, format=fmt, exif=exif.tobytes(), xmp=XMP, quality=90)
    return out.getvalue()


def read(data):
    im = Image.open(io.BytesIO(data))
    im.load()
    exif = im.getexif()
    xmp = im.info.get("xmp") or b""
    if isinstance(xmp, str):
        xmp = xmp.encode()
    gps = {str(k): str(v) for k, v in exif.get_ifd(0x8825).items()}
    tags = sorted(list(exif.keys()) + list(exif.get_ifd(0x8769).keys()))
    return im, tags, gps, xmp.decode("utf-8", "replace")


def main():
    req = json.load(sys.stdin)
    if req["op"] == "make":
        data = make(req["format"])
        json.dump({"hex": data.hex(), "markers": MARKERS}, sys.stdout)
    elif req["op"] == "check":
        original, o_tags, o_gps, _ = read(bytes.fromhex(req["original"]))
        stored, tags, gps, xmp = read(bytes.fromhex(req["stored"]))
        json.dump(
            {
                "size": list(stored.size),
                "original_size": list(original.size),
                "same_pixels": original.tobytes() == stored.tobytes(),
                "exif_tags": tags,
                "gps": gps,
                "xmp": xmp,
                "original_exif_tags": o_tags,
                "original_gps_tags": sorted(o_gps),
            },
            sys.stdout,
        )
    else:
        raise SystemExit("unknown op")


if __name__ == "__main__":
    main()
