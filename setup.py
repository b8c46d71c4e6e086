from setuptools import find_packages, setup

setup(
    name="pafuse-bench",
    version="0.1.0",
    description="Train, compare and report 2D-to-3D whole-body pose lifters (H3WB, PAFUSE) on one harness.",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["bench", "bench.*", "baselines", "baselines.*", "parts", "parts.*"]),
    include_package_data=True,
    install_requires=[
        "torch>=2.2",
        "numpy>=1.24",
        "pandas>=2.0",
        "timm>=1.0.3",
        "pyyaml>=6.0",
        "tabulate>=0.9",
        "submitit>=1.5",
        "tqdm>=4.60",
        "matplotlib>=3.7",
    ],
    extras_require={"test": ["pytest>=7", "ruff>=0.6"]},
)
