package pvekeep

// ServiceFacts is what the panel's own tables say about one service: who
// owns it, its status, the VM it is bound to and the package it bought.
// internal/store reads it; nothing in it is the plugin's own state except
// VMID when the plugin's service table binds one.
type ServiceFacts struct {
	ServiceID   ServiceID
	ClientID    int64
	ProductID   int64
	ServerID    int64  // tblhosting.server
	Status      string // tblhosting.domainstatus: Pending, Active, Suspended, Terminated, Cancelled, Fraud, Completed
	Domain      string // tblhosting.domain, the VM's hostname
	ProductName string

	// VMID is mod_pvekeep_services.vmid when set, else the value of the
	// product custom field named "vmid"; 0 when neither holds a valid id.
	VMID VMID

	// ProductSettings holds tblproducts.configoption1..24 at index 0..23.
	ProductSettings [24]string

	// ConfigOptions maps a configurable option's name (the part before
	// '|') to the service's chosen value: for dropdown and radio options
	// the selected sub-option's text before '|'; for yes/no and quantity
	// options the quantity as a decimal string.
	ConfigOptions map[string]string

	ClientFirstName string
	ClientLastName  string
	ClientEmail     string
	ClientLanguage  string // tblclients.language, "" means the panel default
}

// Active reports whether the service may be changed by its client.
func (f ServiceFacts) Active() bool { return f.Status == "Active" }

// Lease is a worker's claim on a job: every write a worker makes is guarded
// by all three fields, so a worker whose lease expired and was taken over
// cannot overwrite the new owner's progress.
type Lease struct {
	JobID   JobID
	Owner   string
	Attempt int
}
