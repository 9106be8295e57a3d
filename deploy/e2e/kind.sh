#!/usr/bin/env bash
# End-to-end run of Prescaler's packaging on a throwaway kind cluster: image build,
# the dry-run overlay, then the production overlay actually scaling something.
#
# NOT run in CI: CI has no Docker engine. Run it yourself on a machine with kind, docker
# and kubectl (1.29 or newer) and access to the image registries:
#
#   deploy/e2e/kind.sh              # create the cluster, run every check, delete the cluster
#   KEEP=1 deploy/e2e/kind.sh       # leave the cluster running to look around
#   NODE_IMAGE=kindest/node:v1.33.1 deploy/e2e/kind.sh   # a given Kubernetes version
#
# The stand-in world matches deploy/examples/config.yaml, so the overlays run unchanged:
# a Prometheus at prometheus-operated.monitoring.svc:9090 scraping each pod of a
# `checkout` Deployment (shop) and a `search-api` Deployment with an HPA (search),
# labelling the series with namespace and deployment; and a steady load on checkout.
#
# Checks, in order (the script stops at the first failure, exit status 1):
#   dry-run     the controller becomes Ready, a replica holds the Lease, Prescaler Events
#               appear on checkout, `prescaler recommend`, `status` and `explain` answer, RBAC refuses a scale
#               write, and nothing was scaled;
#   production  RBAC allows the scale write, checkout is scaled up to its minReplicas (2)
#               and the search-api HPA's minReplicas is raised to at least 3, with the
#               original recorded in the prescaler.io/original-min-replicas annotation.
set -euo pipefail

CLUSTER=${CLUSTER:-prescaler-e2e}
KEEP=${KEEP:-0}
NODE_IMAGE=${NODE_IMAGE:-}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml")
IMAGE="prescaler:$VERSION"   # the image deploy/base/deployment.yaml names
CONTROLLER=system:serviceaccount:prescaler:prescaler

log() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# wait_for SECONDS DESCRIPTION COMMAND...: run COMMAND every 5s until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after waiting for: $what"
    sleep 5
  done
  echo "ok: $what"
}

for tool in kind docker kubectl; do
  command -v "$tool" >/dev/null || fail "$tool is not on PATH"
done

cleanup() {
  if [[ $KEEP == 1 ]]; then
    echo "cluster kept: kubectl --context kind-$CLUSTER ...; delete it with: kind delete cluster --name $CLUSTER"
  else
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

log "cluster $CLUSTER and image $IMAGE"
kind create cluster --name "$CLUSTER" --wait 120s ${NODE_IMAGE:+--image "$NODE_IMAGE"}
docker build -t "$IMAGE" "$ROOT"
kind load docker-image "$IMAGE" --name "$CLUSTER"
kubectl config use-context "kind-$CLUSTER" >/dev/null

log "stand-in world: Prometheus, checkout (with load), search-api (with an HPA)"
kubectl apply -f - <<'YAML'
apiVersion: v1
kind: Namespace
metadata:
  name: monitoring
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Namespace
metadata:
  name: search
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: prometheus
  namespace: monitoring
data:
  prometheus.yml: |
    global:
      scrape_interval: 10s
    scrape_configs:
      # Every pod behind the headless Services, found through DNS (no RBAC needed),
      # labelled the way deploy/examples/config.yaml's queries expect.
      - job_name: checkout
        dns_sd_configs:
          - {names: [checkout-pods.shop.svc.cluster.local], type: A, port: 9898, refresh_interval: 10s}
        relabel_configs:
          - {target_label: namespace, replacement: shop}
          - {target_label: deployment, replacement: checkout}
      - job_name: search-api
        dns_sd_configs:
          - {names: [search-api-pods.search.svc.cluster.local], type: A, port: 9898, refresh_interval: 10s}
        relabel_configs:
          - {target_label: namespace, replacement: search}
          - {target_label: deployment, replacement: search-api}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: prometheus
  namespace: monitoring
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: prometheus
  template:
    metadata:
      labels:
        app.kubernetes.io/name: prometheus
    spec:
      containers:
        - name: prometheus
          image: prom/prometheus:v3.4.1
          args: [--config.file=/etc/prometheus/prometheus.yml, --storage.tsdb.path=/prometheus]
          ports:
            - {name: http, containerPort: 9090}
          readinessProbe:
            httpGet: {path: /-/ready, port: http}
          volumeMounts:
            - {name: config, mountPath: /etc/prometheus}
            - {name: data, mountPath: /prometheus}
      volumes:
        - name: config
          configMap: {name: prometheus}
        - name: data
          emptyDir: {}
---
# The name the Prometheus Operator gives its Service, and deploy/examples/config.yaml's URL.
apiVersion: v1
kind: Service
metadata:
  name: prometheus-operated
  namespace: monitoring
spec:
  selector:
    app.kubernetes.io/name: prometheus
  ports:
    - {name: http, port: 9090, targetPort: http}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: checkout
  template:
    metadata:
      labels:
        app.kubernetes.io/name: checkout
    spec:
      containers:
        - name: app
          image: ghcr.io/stefanprodan/podinfo:6.7.1
          command: [./podinfo, --port=9898]
          ports:
            - {name: http, containerPort: 9898}
          readinessProbe:
            httpGet: {path: /readyz, port: http}
---
apiVersion: v1
kind: Service
metadata:
  name: checkout
  namespace: shop
spec:
  selector:
    app.kubernetes.io/name: checkout
  ports:
    - {name: http, port: 9898, targetPort: http}
---
apiVersion: v1
kind: Service
metadata:
  name: checkout-pods
  namespace: shop
spec:
  clusterIP: None
  selector:
    app.kubernetes.io/name: checkout
  ports:
    - {name: http, port: 9898, targetPort: http}
---
# About 10 requests/s on checkout: the observed rate Prescaler forecasts from.
apiVersion: v1
kind: Pod
metadata:
  name: load
  namespace: shop
spec:
  containers:
    - name: load
      image: busybox:1.37.0
      command: [sh, -c, "while true; do wget -q -O /dev/null http://checkout:9898/; sleep 0.1; done"]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: search-api
  namespace: search
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: search-api
  template:
    metadata:
      labels:
        app.kubernetes.io/name: search-api
    spec:
      containers:
        - name: app
          image: ghcr.io/stefanprodan/podinfo:6.7.1
          command: [./podinfo, --port=9898]
          ports:
            - {name: http, containerPort: 9898}
          resources:
            requests: {cpu: 10m}
---
apiVersion: v1
kind: Service
metadata:
  name: search-api-pods
  namespace: search
spec:
  clusterIP: None
  selector:
    app.kubernetes.io/name: search-api
  ports:
    - {name: http, port: 9898, targetPort: http}
---
# search-api is in hpaFloor mode: Prescaler raises this HPA's minReplicas. kind has no
# metrics-server, so the HPA scales on nothing else; it still enforces minReplicas.
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: search-api
  namespace: search
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: search-api}
  minReplicas: 1
  maxReplicas: 40
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: 80}
YAML
kubectl rollout status -n monitoring deploy/prometheus --timeout=180s
kubectl rollout status -n shop deploy/checkout --timeout=180s
kubectl rollout status -n search deploy/search-api --timeout=180s

replicas() { kubectl get deploy "$2" -n "$1" -o jsonpath='{.spec.replicas}'; }
can_scale() { kubectl auth can-i patch deployments --subresource=scale -n shop --as="$CONTROLLER"; }
prescaler_events() {
  kubectl get events -n shop --field-selector involvedObject.name=checkout \
    -o jsonpath='{range .items[*]}{.source.component}{" "}{.reason}{": "}{.message}{"\n"}{end}' | grep '^prescaler '
}
lease_held() { [[ -n $(kubectl get lease prescaler -n prescaler -o jsonpath='{.spec.holderIdentity}') ]]; }

log "dry-run overlay"
kubectl apply -k "$ROOT/deploy/overlays/dry-run"
kubectl rollout status -n prescaler deploy/prescaler --timeout=300s
wait_for 60 "a replica holds the Lease" lease_held
would_rescale() { prescaler_events | grep -q '^prescaler WouldRescale: would scale 1 → '; }
wait_for 300 "a WouldRescale Event on shop/checkout (dry run: minReplicas 2, 1 running)" would_rescale
prescaler_events | tail -n 5
kubectl exec -n prescaler deploy/prescaler -- prescaler recommend --config /etc/prescaler/config.yaml
kubectl exec -n prescaler deploy/prescaler -- prescaler status -o wide
kubectl exec -n prescaler deploy/prescaler -- prescaler explain shop/checkout
[[ $(can_scale) == no ]] || fail "the dry-run overlay lets the controller patch deployments/scale"
[[ $(replicas shop checkout) == 1 ]] || fail "checkout was scaled in dry-run"
echo "ok: dry run wrote nothing"

log "production overlay"
kubectl apply -k "$ROOT/deploy/overlays/production"
kubectl rollout status -n prescaler deploy/prescaler --timeout=300s
[[ $(can_scale) == yes ]] || fail "the production overlay does not let the controller patch deployments/scale"
checkout_at_min() { (($(replicas shop checkout) >= 2)); }
hpa_floor_raised() {
  (($(kubectl get hpa search-api -n search -o jsonpath='{.spec.minReplicas}') >= 3)) &&
    [[ $(kubectl get hpa search-api -n search \
      -o jsonpath='{.metadata.annotations.prescaler\.io/original-min-replicas}') == 1 ]]
}
wait_for 300 "checkout scaled to at least 2 replicas" checkout_at_min
wait_for 300 "search-api HPA minReplicas raised to at least 3" hpa_floor_raised
kubectl get deploy -n shop checkout
kubectl get hpa -n search search-api

log "all checks passed"
