"""The API handlers, one module per area: module-level ``@api`` functions that parse the
message, call one service (:mod:`coordinator.services`) and shape the reply."""

from coordinator.apis import (
    basics,
    eips,
    ha,
    hosts,
    imagedeletion,
    images,
    isos,
    localmigrate,
    maintenance,
    networks,
    snapshots,
    storage,
    vmdeletion,
    vms,
    volumedeletion,
    volumes,
)

MODULES = (basics, hosts, maintenance, storage, networks, images, imagedeletion, vms,
           vmdeletion, volumes, volumedeletion, snapshots, eips, localmigrate, isos, ha)
