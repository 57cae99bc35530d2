"""Writes test/fixtures/pillow-bicubic.json: Pillow's BICUBIC resize of small deterministic RGB
images (the inputs are re-made by test/metrics-math.test.ts from the same formula), the reference
for server/engine/metrics/resample.ts. Run with Debian's python3-pil and python3-numpy:
    python3 scripts/pillow-bicubic-cases.py
"""
import base64, json
import numpy as np
from PIL import Image, __version__

def source(w, h):
    # The formula the test uses: (x*37 + y*11 + c*101 + (x*y) % 7 * 29) % 256
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing='ij')
    return ((x * 37 + y * 11 + c * 101 + (x * y) % 7 * 29) % 256).astype(np.uint8)

cases = []
for (w, h, W, H) in [(13, 9, 7, 20), (40, 30, 17, 11), (9, 9, 31, 31), (64, 48, 50, 37), (11, 70, 24, 23)]:
    out = np.asarray(Image.fromarray(source(w, h)).resize((W, H), Image.BICUBIC))
    cases.append({'from': [w, h], 'to': [W, H], 'rgb': base64.b64encode(out.tobytes()).decode()})
json.dump({'pillow': __version__, 'cases': cases}, open('test/fixtures/pillow-bicubic.json', 'w'))
