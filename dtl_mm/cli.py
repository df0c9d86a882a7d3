"""``dtl-mm VERB ...`` and ``python -m dtl_mm VERB ...``: the tools of the
package, installed or not.

Each verb runs the tool of the same name (the scripts in ``tools/``, which
a wheel carries in ``dtl_mm/.mim/tools``) with the remaining arguments, in
this process, so ``dtl_mm`` is imported (and ``dtl_mm::`` base configs
resolve) before any config is read.
"""
import os.path as osp
import sys

from .utils.package_files import shipped

# verb -> (script in tools/, what it does)
VERBS = {
    'train': ('train.py', 'train a detector or segmentor'),
    'test': ('test.py', 'evaluate a checkpoint'),
    'infer': ('infer.py', 'predict on images (one or several tasks)'),
    'convert':
    ('convert_checkpoint.py', 'convert a checkpoint: lean <-> self-contained'),
    'check-data':
    ('check_data.py', "check a config's data files, print what was counted"),
    'params': ('param_table.py', 'count trainable / frozen parameters'),
    'memory': ('memory.py', 'predict the GPU memory of training, no GPU'),
    'env': ('check_env.py', 'check the installed OpenMMLab stack and CUDA'),
    'toy-data': ('make_toy_data.py', 'write the toy shapes data set'),
}


def usage():
    width = max(map(len, VERBS))
    lines = [f'  {v:<{width}}  {what}' for v, (_, what) in VERBS.items()]
    return ('usage: dtl-mm VERB [ARGS ...]   (also: python -m dtl_mm VERB)'
            '\n\nverbs:\n' + '\n'.join(lines) +
            '\n\n`dtl-mm VERB --help` shows the arguments of each verb.')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(usage())
        return 0
    verb, args = argv[0], argv[1:]
    if verb not in VERBS:
        print(f'dtl-mm: unknown verb {verb!r}\n\n{usage()}', file=sys.stderr)
        return 2
    script = osp.join(shipped('tools'), VERBS[verb][0])
    with open(script, encoding='utf-8') as f:
        code = compile(f.read(), script, 'exec')
    # as `python SCRIPT ARGS` would run it, with the verb as its name in
    # the usage lines (runpy would put the script's path there)
    sys.argv = [f'dtl-mm {verb}', *args]
    exec(code, {'__name__': '__main__', '__file__': script})
    return 0


if __name__ == '__main__':
    sys.exit(main())
