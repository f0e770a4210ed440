/*  zf_deploy: zflow deploy PIPELINE --systemd DIR | --kustomize DIR.

    --systemd writes a unit for the broker (its journal under
    /var/lib/zflow-PIPELINE), a templated unit for each actor (one instance
    a worker: NAME@0 ... NAME@N-1) and a target that wants them all.
    --kustomize writes Kubernetes manifests and their kustomization: the
    broker as a StatefulSet with a volume for its journal and a headless
    Service, each actor a Deployment of `workers` replicas, the pipeline
    file as a ConfigMap, the CURVE certificates it names as a Secret, the
    metrics port annotated for Prometheus. docs/deploy.md.
*/
#ifndef ZF_DEPLOY_H_INCLUDED
#define ZF_DEPLOY_H_INCLUDED

#include "zf_cmd.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const zf_cmd_t zf_cmd_deploy;

#ifdef __cplusplus
}
#endif
#endif
