"""Builds test/fixtures/metrics-other/reference/metrics.json: the reference values of a metrics fixture of
the shared format with other sizes and aspects (48x26 landscape, 24x40 portrait) and other prompts, computed
by the Python reference stack: NumPy (L2, PSNR, TV, tv_seam), scikit-image (SSIM), Pillow (CLIP
preprocessing) and NumPy CLIP scores. The pictures are not in git: test/support/metrics-other.ts makes
them (the test does so at run time) and this script reads them. The CLIP embeddings of the Pillow pixel
values come from onnxruntime through scripts/metrics-reference-embed.ts (the model level that the shared
fixture pins to 1e-4). The test links the shared tiny CLIP in as clip/.
Debian: apt-get install python3-numpy python3-pil python3-skimage. Run from the project root:
    npx tsx test/support/metrics-other.ts /tmp/mref
    /usr/bin/python3 scripts/metrics-reference.py prepare /tmp/mref
    npx tsx scripts/metrics-reference-embed.ts /tmp/mref ../shared/fixtures/metrics/clip
    /usr/bin/python3 scripts/metrics-reference.py finish /tmp/mref
"""
import json, os, sys
import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

OUT = 'test/fixtures/metrics-other/reference'
PROMPTS = {
    'source': 'a photo of a dog on a beach',
    'style1_left': 'A highly detailed mosaic of a dog on a beach, made of small, colorful tiles with visible grout lines',
    'style2_right': 'A vibrant Andy Warhol-style pop art image of a dog on a beach, bold contrasting colors, thick outlines',
}
MEAN = np.array([0.48145466, 0.4578275, 0.40821073]); STD = np.array([0.26862954, 0.26130258, 0.27577711])

def pixel_values(img):
    u8 = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    h, w, _ = u8.shape
    nw, nh = (224, int(224 * h / w)) if w <= h else (int(224 * w / h), 224)
    a = np.asarray(Image.fromarray(u8).resize((nw, nh), Image.BICUBIC)).astype(np.float64)
    t, l = (nh - 224) // 2, (nw - 224) // 2
    a = (a[t:t + 224, l:l + 224] / 255 - MEAN) / STD
    return a.transpose(2, 0, 1).astype(np.float32)

def halves(img):
    w = img.shape[1]
    split = -(-w // 2)  # columns < W/2 go left
    return img[:, :split], img[:, split:]

def tv(x):
    x = x.astype(np.float64)
    return (np.abs(x[:, 1:] - x[:, :-1]).sum() + np.abs(x[1:] - x[:-1]).sum()) / (x.shape[0] * x.shape[1])

def tv_seam(x):
    x = x.astype(np.float64)
    h, w, _ = x.shape
    c0, c1 = int(w / 2 - 0.1 * w), int(w / 2 + 0.1 * w)
    b = x[:, c0:c1]
    s = np.sqrt((b[:, 1:] - b[:, :-1]) ** 2 + 1e-6).sum() + np.sqrt((b[1:] - b[:-1]) ** 2 + 1e-6).sum()
    return s / (h * (c1 - c0))

NAMES = [f'{shape}_{kind}' for shape in ['wide', 'tall'] for kind in ['original', 'gen0', 'gen1']]

def images(work):
    return {name: np.load(f'{work}/{name}.npy') for name in NAMES}

def prepare(work):
    for name, img in images(work).items():
        left, right = halves(img)
        np.save(f'{work}/{name}_pv.npy', np.stack([pixel_values(img), pixel_values(left), pixel_values(right)]))
    json.dump(PROMPTS, open(f'{work}/prompts.json', 'w'))

def unit(v):
    return v / np.linalg.norm(v)

def cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))

def finish(work):
    imgs = images(work)
    os.makedirs(OUT, exist_ok=True)
    t = {k: unit(np.load(f'{work}/text_{k}.npy').astype(np.float64).ravel()) for k in ['source', 'style1', 'style2']}
    emb = lambda n: [unit(e.astype(np.float64)) for e in np.load(f'{work}/{n}_embeds.npy')]
    cases = []
    for name in ['wide', 'tall']:
        o = imgs[f'{name}_original']; eo = emb(f'{name}_original')
        for i in range(2):
            gname = f'{name}_gen{i}'; g = imgs[gname]; eg = emb(gname)
            d = g.astype(np.float64) - o
            d1, d2 = t['style1'] - t['source'], t['style2'] - t['source']
            cases.append({
                'generated': gname, 'original': f'{name}_original',
                'l2': float(np.sqrt((d ** 2).sum())), 'psnr': float(10 * np.log10(1 / (d ** 2).mean())),
                'ssim': float(structural_similarity(g.astype(np.float64), o.astype(np.float64), gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=2)),
                'tv': float(tv(g)), 'tv_seam': float(tv_seam(g)),
                'clip': (cos(eg[0], t['style1']) + cos(eg[0], t['style2'])) / 2,
                'clip_left': cos(eg[1], t['style1']), 'clip_right': cos(eg[2], t['style2']),
                'dclip': (cos(eg[0] - eo[0], d1) + cos(eg[0] - eo[0], d2)) / 2,
                'dclip_left': cos(eg[1] - eo[1], d1), 'dclip_right': cos(eg[2] - eo[2], d2),
            })
    spec = {'prompts': PROMPTS, 'cases': cases,
            'definitions': 'as ../shared/fixtures/metrics/reference/metrics.json; tv_seam as the seed code (central 20% of the width, sqrt(d^2 + 1e-6), per band pixel)',
            'tolerance': {'l2': 1e-3, 'psnr': 1e-3, 'ssim': 1e-4, 'tv': 1e-4, 'tv_seam': 1e-4, 'clip_model_level': 1e-4, 'clip_end_to_end': 2e-2}}
    json.dump(spec, open(f'{OUT}/metrics.json', 'w'), indent=1)

{'prepare': prepare, 'finish': finish}[sys.argv[1]](sys.argv[2])
