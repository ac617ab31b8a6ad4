// Package all lists every controller kubelite runs, for the controller
// manager: the list lives outside package controller because each
// controller imports it (for the shared caches), as Kubernetes keeps its
// list in kube-controller-manager rather than in the controller library.
package all

import (
	"slices"

	"kubelite/controller"
	"kubelite/controller/builtin"
	"kubelite/controller/deployment"
	"kubelite/controller/endpoints"
	"kubelite/controller/gc"
	"kubelite/controller/loadbalancer"
	"kubelite/controller/namespace"
	"kubelite/controller/nodelifecycle"
	"kubelite/controller/replicaset"
	"kubelite/controller/scheduler"
)

// Controllers returns the descriptors of every controller, in start order.
func Controllers() []controller.ControllerDescriptor {
	return []controller.ControllerDescriptor{
		{Name: "deployment-controller", Workers: 4, New: func(cc controller.ControllerContext) (controller.Runner, error) {
			return deployment.New(cc.Client, cc.Informers, cc.Recorder, deployment.Config{Logger: cc.Logger}), nil
		}},
		{Name: "replicaset-controller", Workers: 4, New: func(cc controller.ControllerContext) (controller.Runner, error) {
			return replicaset.New(cc.Client, cc.Informers, cc.Recorder, replicaset.Config{Logger: cc.Logger}), nil
		}},
		{Name: "default-scheduler", Workers: 1, New: func(cc controller.ControllerContext) (controller.Runner, error) {
			return scheduler.New(cc.Client, cc.Informers, cc.Recorder, scheduler.Config{Logger: cc.Logger}), nil
		}},
		{Name: endpoints.ControllerName, Workers: 4, New: func(cc controller.ControllerContext) (controller.Runner, error) {
			return endpoints.New(cc.Client, cc.Informers, cc.Recorder, endpoints.Config{Logger: cc.Logger}), nil
		}},
		{Name: builtin.ControllerName, Workers: 1, New: func(cc controller.ControllerContext) (controller.Runner, error) {
			addresses := cc.Config.APIServerAddresses
			if cc.Config.APIServerAddress != "" {
				addresses = append(slices.Clone(addresses), cc.Config.APIServerAddress)
			}
			return builtin.New(cc.Client, cc.Informers, cc.Recorder, builtin.Config{
				ServiceCIDR:        cc.Config.ServiceCIDR,
				APIServerAddresses: addresses,
				APIServerPort:      cc.Config.APIServerPort,
				Logger:             cc.Logger,
			}), nil
		}},
		{Name: namespace.ControllerName, Workers: 2, New: func(cc controller.ControllerContext) (controller.Runner, error) {
			return namespace.New(cc.Client, cc.Informers, cc.Recorder, namespace.Config{Logger: cc.Logger}), nil
		}},
		{Name: gc.ControllerName, Workers: 4, New: func(cc controller.ControllerContext) (controller.Runner, error) {
			return gc.New(cc.Client, cc.Informers, cc.Recorder, gc.Config{Logger: cc.Logger}), nil
		}},
		{Name: nodelifecycle.ControllerName, Workers: 2, New: func(cc controller.ControllerContext) (controller.Runner, error) {
			return nodelifecycle.New(cc.Client, cc.Informers, cc.Recorder, nodelifecycle.Config{
				ClusterCIDR:            cc.Config.ClusterCIDR,
				NodeMonitorGracePeriod: cc.Config.NodeMonitorGracePeriod,
				PodEvictionTimeout:     cc.Config.PodEvictionTimeout,
				Etcd:                   cc.Config.Etcd,
				Logger:                 cc.Logger,
			}), nil
		}},
		{Name: loadbalancer.ControllerName, Workers: 1, New: func(cc controller.ControllerContext) (controller.Runner, error) {
			return loadbalancer.New(cc.Client, cc.Informers, cc.Recorder, loadbalancer.Config{Pool: cc.Config.LoadBalancerPool, Logger: cc.Logger}), nil
		}},
	}
}
