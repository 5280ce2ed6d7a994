"""Model weights: a manifest-verified store, plus the converters that fill it.

Every model deidvid runs comes either from ``weights/*.safetensors`` (converted by
``python -m deidvid.tools.convert.main``) or from a file inside an installed registry
package. Both are listed in ``weights/MANIFEST.json`` with their sha256, which is
checked on every load. Nothing is downloaded at run time and no pickle is loaded.
"""

from deidvid.weights.manifest import (
    load_safetensors,
    manifest_entry,
    package_file,
    read_manifest,
    sha256_file,
    update_manifest_entry,
    weights_dir,
)

__all__ = [
    "load_safetensors",
    "manifest_entry",
    "package_file",
    "read_manifest",
    "sha256_file",
    "update_manifest_entry",
    "weights_dir",
]
