from setuptools import find_packages, setup


def read_version():
    scope = {}
    with open('npdg/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='npdg',
    version=read_version(),
    description='Domain generalization for MMSegmentation 1.x by network pruning',
    long_description=open('README.md').read() if __import__('os').path.exists('README.md') else '',
    long_description_content_type='text/markdown',
    # npdg, and the synthetic-domain generator the demo and the tests use
    packages=find_packages(include=['npdg', 'npdg.*', 'synthetic_domains']),
    python_requires='>=3.8',
    # torch is deliberately not listed: the CPU wheel must be pinned by the
    # installer (requirements.txt) and GPU machines bring their own build.
    install_requires=[
        'mmengine>=0.10.4,<0.11',
        'mmsegmentation>=1.2.0,<1.3',
        'torch-pruning>=1.5,<2',
        'cityscapesscripts>=2.2',
        'opencv-python',
        'numpy',
        'ftfy',
        'regex',
        'matplotlib',
    ],
    zip_safe=False,
)
