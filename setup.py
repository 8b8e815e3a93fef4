from configparser import ConfigParser
from pathlib import Path
import setuptools, shlex
from setuptools.command.build_py import build_py

# note: all settings are in settings.ini; edit there, not here
config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

cfg_keys = 'version description keywords author author_email'.split()
expected = cfg_keys + "lib_name user branch license status min_python audience language".split()
for o in expected: assert o in cfg, "missing expected setting: {}".format(o)
setup_cfg = {o:cfg[o] for o in cfg_keys}

# SPDX identifiers: setuptools now takes the license as an expression rather than a classifier
licenses = {'apache2': 'Apache-2.0', 'mit': 'MIT', 'gpl2': 'GPL-2.0-only', 'gpl3': 'GPL-3.0-only', 'bsd3': 'BSD-3-Clause'}
statuses = [ '0 - Pre-Planning', '1 - Planning', '2 - Pre-Alpha', '3 - Alpha',
    '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive' ]
py_versions = '3.7 3.8 3.9 3.10 3.11 3.12 3.13'.split()

requirements = shlex.split(cfg.get('requirements', ''))
if cfg.get('pip_requirements'): requirements += shlex.split(cfg.get('pip_requirements', ''))
min_python = cfg['min_python']
lic = licenses.get(cfg['license'].lower(), cfg['license'])
dev_requirements = (cfg.get('dev_requirements') or '').split()

package_data = dict()
pkg_data = cfg.get('package_data', None)
if pkg_data:
    package_data[cfg['lib_name']] =  pkg_data.split() # split as multiple files might be listed
# Add package data to setup_cfg for setuptools.setup(..., **setup_cfg)
setup_cfg['package_data'] = package_data

# kd_nb's stage notebook and presets live in nbs/, where they are edited and documented; a wheel carries a copy of them
# in kd_nb/nbs/ (kd_nb.experiment.nbs_file finds it when there is no checkout). Copying at build time keeps one copy in git.
nbs_path = Path(cfg['nbs_path'])

def nbs_package_files():
    "The files under nbs_path that `nbs_package_data` names; a pattern that names nothing is an error, not a smaller wheel."
    files = []
    for pattern in cfg.get('nbs_package_data', '').split():
        found = sorted(p for p in nbs_path.glob(pattern) if p.is_file())
        if not found: raise FileNotFoundError(f"nbs_package_data: {nbs_path/pattern} names no file (an sdist without MANIFEST.in's nbs lines?)")
        files += found
    return files

class build_py_with_nbs(build_py):
    "setuptools' build_py, then the `nbs_package_data` files copied into the built package's nbs/ folder."
    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False): return  # an editable install reads the checkout's nbs/ itself
        for src in nbs_package_files():
            dest = Path(self.build_lib)/cfg['lib_name']/'nbs'/src.relative_to(nbs_path)
            self.mkpath(str(dest.parent))
            self.copy_file(str(src), str(dest))

git_url = cfg['git_url']
project_urls = {'Documentation': cfg['doc_host'] + cfg['doc_baseurl'], 'Source': git_url, 'Issues': git_url + '/issues'}
classifiers = cfg.get('classifiers', '').split('\n')
# the licence as an SPDX expression (metadata 2.4's License-Expression) where setuptools writes one (77 onwards)
licence = {'license_expression': lic} if int(setuptools.__version__.split('.')[0]) >= 77 else {'license': lic}

setuptools.setup(
    name = cfg['lib_name'],
    **licence,
    classifiers = [
        'Development Status :: ' + statuses[int(cfg['status'])],
        'Intended Audience :: ' + cfg['audience'].title(),
        'Natural Language :: ' + cfg['language'].title(),
    ] + ['Programming Language :: Python :: '+o for o in py_versions[py_versions.index(min_python):]]
      + [c.strip() for c in classifiers if c.strip()],
    license_files = ['LICENSE'],
    url = git_url,
    project_urls = project_urls,
    cmdclass = {'build_py': build_py_with_nbs},
    packages = setuptools.find_packages(),
    include_package_data = True,
    install_requires = requirements,
    extras_require={ 'dev': dev_requirements },
    dependency_links = cfg.get('dep_links','').split(),
    python_requires  = '>=' + cfg['min_python'],
    long_description = open('README.md', encoding='utf-8').read(),
    long_description_content_type = 'text/markdown',
    zip_safe = False,
    entry_points = {
        'console_scripts': cfg.get('console_scripts','').split(),
        'nbdev': [f'{cfg.get("lib_path")}={cfg.get("lib_path")}._modidx:d']
    },
    **setup_cfg)
