package tollgate.pss.baseline.host_process_test

import data.tollgate.pss.baseline.host_process

test_windows_pod_without_host_process_allowed if {
	count(host_process.violation) == 0 with input as {"pod": {"spec": {
		"os": {"name": "windows"},
		"securityContext": {"windowsOptions": {"hostProcess": false, "runAsUserName": "ContainerUser"}},
		"containers": [{"name": "app", "image": "mcr.microsoft.com/windows/nanoserver:ltsc2022"}],
	}}}
}

test_missing_security_context_allowed if {
	count(host_process.violation) == 0 with input as {"pod": {"spec": {"containers": [{"name": "app"}]}}}
}

test_pod_level_host_process_denied if {
	host_process.violation == {{
		"msg": "pod runs as a Windows HostProcess pod (securityContext.windowsOptions.hostProcess: true)",
		"path": ["spec", "securityContext", "windowsOptions", "hostProcess"],
	}} with input as {"pod": {"spec": {
		"securityContext": {"windowsOptions": {"hostProcess": true}},
		"hostNetwork": true,
		"containers": [{"name": "app"}],
	}}}
}

test_every_container_kind_denied if {
	v := host_process.violation with input as {"pod": {"spec": {
		"initContainers": [{"name": "setup", "securityContext": {"windowsOptions": {"hostProcess": true}}}],
		"containers": [
			{"name": "app"},
			{"name": "agent", "securityContext": {"windowsOptions": {"hostProcess": true}}},
		],
		"ephemeralContainers": [{"name": "debug", "securityContext": {"windowsOptions": {"hostProcess": true}}}],
	}}}
	v == {
		{
			"msg": `init container "setup" is a Windows HostProcess container (securityContext.windowsOptions.hostProcess: true)`,
			"path": ["spec", "initContainers", 0, "securityContext", "windowsOptions", "hostProcess"],
		},
		{
			"msg": `container "agent" is a Windows HostProcess container (securityContext.windowsOptions.hostProcess: true)`,
			"path": ["spec", "containers", 1, "securityContext", "windowsOptions", "hostProcess"],
		},
		{
			"msg": `ephemeral container "debug" is a Windows HostProcess container (securityContext.windowsOptions.hostProcess: true)`,
			"path": ["spec", "ephemeralContainers", 0, "securityContext", "windowsOptions", "hostProcess"],
		},
	}
}
