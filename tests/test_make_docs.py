"""tools/make_docs.py builds docs pages from templates; README stays short; doc links resolve."""
import glob
import importlib.util
import os.path as osp
import re
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(ROOT, 'tools', 'make_docs.py')
README_MAX_LINES = 200

_spec = importlib.util.spec_from_file_location('make_docs', TOOL)
make_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_docs)


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True,
                          timeout=60)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding='utf-8')


@pytest.fixture
def site(tmp_path):
    """A tiny repository: one template including one benchmark table."""
    write(tmp_path / 'benchmarks' / 'results' / 'table.md', '| a | b |\n|---|---|\n| 1 | 2 |\n')
    write(tmp_path / 'docs' / 'results.in.md',
          '# Results\n\nProse before.\n\n<!-- include: benchmarks/results/table.md -->\n\n'
          'Prose after.\n')
    return tmp_path


def test_include_marker_is_replaced_by_the_file_content(site):
    text = (site / 'docs' / 'results.in.md').read_text()
    out = make_docs.render(text, str(site), 'docs/results.in.md')
    assert 'include:' not in out
    assert '\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nProse after.\n' in out
    assert out.startswith('# Results\n\nProse before.\n\n| a | b |')
    # through the command line: the page is written beside its template
    proc = run_tool('--root', str(site))
    assert proc.returncode == 0, proc.stderr
    page = (site / 'docs' / 'results.md').read_text()
    assert 'tools/make_docs.py' in page.splitlines()[0]          # says it is generated
    assert page.endswith(out)
    # a marker that is not alone on its line is prose, not an include
    assert make_docs.render('see <!-- include: x.md --> here\n', str(site)) == \
        'see <!-- include: x.md --> here\n'


def test_missing_included_file_is_an_error_naming_it(site):
    write(site / 'docs' / 'results.in.md',
          '# Results\n\n<!-- include: benchmarks/results/table.md -->\n\n'
          '<!-- include: benchmarks/results/gone.md -->\n')
    with pytest.raises(make_docs.IncludeError, match=r'docs/results\.in\.md:5: included file '
                       r'benchmarks/results/gone\.md does not exist'):
        make_docs.build('docs/results.in.md', str(site))
    for args in ([], ['--check']):
        proc = run_tool('--root', str(site), *args)
        assert proc.returncode == 2
        assert 'benchmarks/results/gone.md' in proc.stderr
        assert 'docs/results.in.md' in proc.stderr
    assert not (site / 'docs' / 'results.md').exists()            # nothing half-written


def test_include_outside_the_root_is_refused(site):
    with pytest.raises(make_docs.IncludeError, match='outside'):
        make_docs.render('<!-- include: ../secret.md -->\n', str(site / 'docs'))


def test_check_fails_on_a_stale_page_and_passes_on_a_fresh_one(site):
    proc = run_tool('--root', str(site), '--check')                # never built
    assert proc.returncode == 1
    assert 'docs/results.md is missing' in proc.stderr
    assert not (site / 'docs' / 'results.md').exists()            # --check writes nothing

    assert run_tool('--root', str(site)).returncode == 0
    proc = run_tool('--root', str(site), '--check')
    assert proc.returncode == 0, proc.stderr

    # the benchmark table changes: the page is stale until rebuilt
    write(site / 'benchmarks' / 'results' / 'table.md', '| a | b |\n|---|---|\n| 1 | 3 |\n')
    proc = run_tool('--root', str(site), '--check')
    assert proc.returncode == 1
    assert 'docs/results.md is stale' in proc.stderr
    assert 'python tools/make_docs.py' in proc.stderr
    assert '| 1 | 2 |' in (site / 'docs' / 'results.md').read_text()

    # a hand edit of the generated page is stale too
    assert run_tool('--root', str(site)).returncode == 0
    assert run_tool('--root', str(site), '--check').returncode == 0
    page = site / 'docs' / 'results.md'
    page.write_text(page.read_text() + 'pasted by hand\n')
    assert make_docs.main(['--root', str(site), '--check']) == 1


def test_repository_results_page_is_up_to_date():
    templates = [t for t, _ in make_docs.pages(ROOT)]
    assert 'docs/results.in.md' in templates
    text = open(osp.join(ROOT, 'docs', 'results.in.md'), encoding='utf-8').read()
    included = make_docs.INCLUDE.findall(text)
    assert included, 'docs/results.in.md includes no benchmark table'
    proc = run_tool('--check')
    assert proc.returncode == 0, ('docs/ is stale; run `python tools/make_docs.py`:\n'
                                  + proc.stderr)


def test_readme_is_short():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        lines = f.read().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f'README.md has {len(lines)} lines (at most {README_MAX_LINES}): move detail to docs/')


FENCE = re.compile(r'^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$', re.M | re.S)
CODE_SPAN = re.compile(r'(`+)(?:(?!\1).)+?\1', re.S)
LINK = re.compile(r'!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
HEADING = re.compile(r'^ {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$', re.M)


def _prose(text):
    """Markdown without fenced code blocks and code spans (links there are not links)."""
    return CODE_SPAN.sub('', FENCE.sub('', text))


def _anchors(path):
    """GitHub's heading ids of a markdown file (lower case, punctuation dropped, '-' for ' ')."""
    with open(path, encoding='utf-8') as f:
        text = FENCE.sub('', f.read())
    seen, out = {}, set()
    for heading in HEADING.findall(text):
        heading = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading).replace('`', '')
        slug = re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f'{slug}-{n}')
    return out


def _doc_files():
    return [osp.join(ROOT, 'README.md')] + sorted(glob.glob(osp.join(ROOT, 'docs', '*.md')))


def test_slugs_follow_github(tmp_path):
    write(tmp_path / 'a.md', '# Checkpoints: the trust model\n## Mixed precision (`--amp`)\n'
          '```\n# not a heading\n```\n## Mixed precision (`--amp`)\n')
    assert _anchors(str(tmp_path / 'a.md')) == {
        'checkpoints-the-trust-model', 'mixed-precision---amp', 'mixed-precision---amp-1'}


@pytest.mark.parametrize('doc', _doc_files(), ids=lambda p: osp.relpath(p, ROOT))
def test_relative_links_resolve(doc):
    with open(doc, encoding='utf-8') as f:
        targets = LINK.findall(_prose(f.read()))
    broken = []
    for target in targets:
        if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.I):        # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition('#')
        path = osp.normpath(osp.join(osp.dirname(doc), file_part)) if file_part else doc
        if not osp.exists(path):
            broken.append(f'{target} (no file {osp.relpath(path, ROOT)})')
        elif anchor and path.endswith('.md') and anchor not in _anchors(path):
            broken.append(f'{target} (no heading #{anchor} in {osp.relpath(path, ROOT)})')
    assert not broken, f'{osp.relpath(doc, ROOT)}: broken links: {broken}'
