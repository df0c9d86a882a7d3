"""Draws docs/architecture.svg: DTLv2 on a 24-block Swin. Standard library
only, so anyone can regenerate it:

    python docs/draw_architecture.py

The positions are what ``build_layout((2, 2, 18, 2), ..., 'dtlv2')`` gives
(tests/test_models/test_dtl_swin.py asserts the same numbers).
"""
import os.path as osp

DEPTHS = (2, 2, 18, 2)
W_BLOCKS = (2, 4, 5, 9, 13, 17, 22, 24)  # w reads the block's input
G_BLOCKS = (13, 15, 17, 19, 22, 24)  # G adds to the block's output
M = 13  # first add-back block: blocks 1..M run under torch.no_grad()

BW, PITCH, STAGE_GAP = 34, 44, 30  # block width, pitch, room for PatchMerging
X0, ROW_Y, ROW_H = 120, 110, 40  # first block's left edge, backbone row
MID = ROW_Y + ROW_H / 2  # the backbone's token path
BUS_Y, G_Y, CSN_Y = 50, 215, 290  # stage-output bus, G circles, side path
WIDTH, HEIGHT = 1436, 430
FROZEN, NOGRAD, W_COL, G_COL = '#cfd8e3', '#eceff3', '#e07b00', '#2e8b3d'
ENDS = [sum(DEPTHS[:s + 1]) for s in range(len(DEPTHS))]  # last block/stage


def block_x(i):
    """Left edge of block i (1-based, numbered over all stages)."""
    stage = sum(i > e for e in ENDS)
    return X0 + (i - 1) * PITCH + stage * STAGE_GAP


def stage_tap(e):
    """x where the output of the stage ending at block e leaves for the
    bus: after G's add when G adds to block e (the backbone outputs the
    fused features), else the block itself."""
    return block_x(e) + BW + 12 if e in G_BLOCKS else block_x(e) + BW - 6


# ----------------------------------------------------------- SVG elements
def rect(x, y, w, h, fill, stroke='#5a6b80', rx=3, extra=''):
    return (f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="{rx}" '
            f'fill="{fill}" stroke="{stroke}" {extra}/>')


def line(x1, y1, x2, y2, color='#444', width=1, arrow=False):
    head = f' marker-end="url(#a{color[1:]})"' if arrow else ''
    return (f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{color}" '
            f'stroke-width="{width}"{head}/>')


def text(x, y, s, size=12, anchor='middle', fill='#222', extra=''):
    return (f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}"'
            f' fill="{fill}" {extra}>{s}</text>')


def arrow_heads():
    return ['<defs>'] + [
        f'<marker id="a{c[1:]}" viewBox="0 0 10 10" refX="9" refY="5" '
        f'markerWidth="7" markerHeight="7" orient="auto">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>'
        for c in ('#444', W_COL, G_COL)
    ] + ['</defs>']


# ----------------------------------------------------------------- parts
def no_grad_region():
    x = X0 - 82
    return [
        rect(x, ROW_Y - 30,
             block_x(M) + BW + 2 - x, ROW_H + 50, NOGRAD, '#9aa5b1', 6,
             'stroke-dasharray="5,3"'),
        text(x + 6, ROW_Y - 14, 'torch.no_grad()', 11, 'start', '#555',
             'font-family="monospace"')
    ]


def backbone():
    out = [
        text(14, MID + 4, 'image', 12, 'start'),
        rect(X0 - 70, ROW_Y, 52, ROW_H, FROZEN),
        text(X0 - 44, MID - 2, 'patch', 10),
        text(X0 - 44, MID + 10, 'embed', 10),
        line(X0 - 18, MID, X0 - 2, MID, width=1.5, arrow=True)
    ]
    for i in range(1, ENDS[-1] + 1):
        x = block_x(i)
        out += [
            rect(x, ROW_Y, BW, ROW_H, FROZEN),
            text(x + BW / 2, MID + 4, i)
        ]
        if i < ENDS[-1]:
            out.append(line(x + BW, MID, block_x(i + 1), MID))
        if i in ENDS[:-1]:  # the stage's PatchMerging halves H, W
            out.append(
                text(
                    (stage_tap(i) + block_x(i + 1)) / 2 + 3,
                    MID + 4,
                    'PM',
                    9,
                    fill='#5a6b80'))
    for s, (d, e) in enumerate(zip(DEPTHS, ENDS)):
        x1, x2, tap = block_x(e - d + 1), block_x(e) + BW, stage_tap(e)
        out.append(
            text(
                (x1 + x2) / 2, ROW_Y - 5, f'stage {s + 1}', 10,
                fill='#5a6b80'))
        if e in G_BLOCKS:  # the output leaves after G's add (the fusion)
            out += [
                line(x2, MID, tap, MID),
                line(tap, MID, tap, BUS_Y), f'<circle cx="{tap}" '
                f'cy="{MID}" r="2.5" fill="#444"/>'
            ]
        else:
            out.append(line(tap, ROW_Y, tap, BUS_Y))  # stage output -> bus
    neck_x = block_x(ENDS[-1]) + BW + 50
    out += [
        line(stage_tap(ENDS[0]), BUS_Y, neck_x, BUS_Y, width=1.5, arrow=True),
        text(
            (X0 + neck_x) / 2,
            BUS_Y - 8,
            'stage outputs (out_indices 0-3)',
            11,
            fill='#555'),
        rect(neck_x, BUS_Y - 20, 110, 150, '#f3e9d2', '#a08850')
    ]
    for dy, s, size in ((40, 'neck', 13), (60, '+ heads', 13),
                        (84, 'mmdet / mmseg', 10), (100, 'trainable', 10)):
        out.append(text(neck_x + 55, BUS_Y + dy, s, size))
    return out


def side_network():
    first = block_x(W_BLOCKS[0]) - 5  # h exists from the first read on
    out = [
        text(first - 8, CSN_Y + 4, 'h', 14, 'end', W_COL,
             'font-style="italic"'),
        text(
            first, CSN_Y + 40, 'Compact Side Network (all trainable '
            'weights): h accumulates z·w, bridges carry it across '
            'stages', 11, 'start', '#555')
    ]
    for s, e in enumerate(ENDS):
        x1 = max(block_x(e - DEPTHS[s] + 1) - 5, first)
        out.append(line(x1, CSN_Y, block_x(e) + BW + 5, CSN_Y, W_COL, 3))
        if e != ENDS[-1]:  # bridge: group conv, kernel 2, stride 2, C -> 2C
            bx = (block_x(e) + BW + block_x(e + 1)) / 2
            out += [
                rect(bx - 13, CSN_Y - 11, 26, 22, '#fde2c4', W_COL),
                text(bx, CSN_Y + 4, 'br', 10)
            ]
    for b in W_BLOCKS:  # h += z_b w_b (Eq. 4), z_b = the input of block b
        x = block_x(b) - 5
        out += [
            line(x, MID, x, CSN_Y - 4, W_COL, 1.5, arrow=True),
            text(x - 3, CSN_Y - 18, 'w', 11, 'end', W_COL)
        ]
    for b in G_BLOCKS:  # z'_{b+1} = z_{b+1} + G(h) (Eq. 7-8)
        x = block_x(b) + BW + 5
        out += [
            line(x, CSN_Y, x, G_Y + 10, G_COL,
                 1.5), f'<circle cx="{x}" cy="{G_Y}" r="10" fill="white" '
            f'stroke="{G_COL}" stroke-width="1.5"/>',
            text(x, G_Y + 4, 'G', 11, fill=G_COL),
            line(x, G_Y - 10, x, MID + 6, G_COL, 1.5, arrow=True),
            f'<circle cx="{x}" cy="{MID}" r="4" fill="{G_COL}"/>'
        ]
    return out


def legend(y=372):
    return [
        rect(20, y - 11, 14, 14, FROZEN),
        text(
            40, y, 'frozen Swin block (mmdet SwinTransformer); PM: its '
            'PatchMerging', 11, 'start'),
        rect(440, y - 11, 14, 14, NOGRAD, '#9aa5b1', 2,
             'stroke-dasharray="3,2"'),
        text(
            460, y, f'runs without autograd: patch embed and blocks 1..{M} '
            f'keep nothing for backward', 11, 'start'),
        line(20, y + 18, 50, y + 18, W_COL, 1.5, arrow=True),
        text(
            56, y + 22, 'w: low-rank read of a block input (about every 4th '
            'block of a stage)', 11, 'start'),
        line(440, y + 18, 470, y + 18, G_COL, 1.5, arrow=True),
        text(
            476, y + 22, f'G: fusion added to a block output (from block '
            f'{M}, about every 2nd)', 11, 'start'),
        text(
            20, y + 44, 'DTLv2 on Swin-B/L (depths 2-2-18-2), bridges (br) = '
            'group conv. DTLv2-LS: same positions, one G per stage + '
            'gamma/beta at 15 and 19. DTLv1: w at 5-24, G at 13-24, h reset '
            'at each stage, no bridges.', 11, 'start', '#555')
    ]


def draw():
    parts = (
        arrow_heads() + [rect(0, 0, WIDTH, HEIGHT, 'white', 'none', 0)] +
        no_grad_region() + backbone() + side_network() + legend())
    return '\n'.join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{HEIGHT}" font-family="Helvetica, Arial, sans-serif">'
    ] + parts + ['</svg>']) + '\n'


if __name__ == '__main__':
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'architecture.svg')
    with open(path, 'w', encoding='utf-8') as f:
        f.write(draw())
    print(f'wrote {path}')
