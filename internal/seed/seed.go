// Package seed writes WHMCS rows (clients, servers, products with their
// module settings, configurable options, services with chosen options and
// the "vmid" custom field) into a database that has the WHMCS tables, as a
// real panel would have them. Tests and `pvekeep demo` use it; production
// code never writes WHMCS tables.
//
// Every NOT NULL column WHMCS declares without a default is filled, so the
// inserts work under a strict sql_mode.
package seed

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"
)

// Execer is what *sql.DB, *sql.Conn and *sql.Tx offer.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Seeder writes WHMCS rows. Now stamps dates (regdate, datecreated,
// created_at/updated_at).
type Seeder struct {
	db  Execer
	now time.Time
}

// New returns a Seeder writing through db, dating rows at now.
func New(db Execer, now time.Time) *Seeder {
	return &Seeder{db: db, now: now.UTC()}
}

func (s *Seeder) insert(ctx context.Context, what, q string, args ...any) (int64, error) {
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("insert %s: %w", what, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("insert %s: %w", what, err)
	}
	return id, nil
}

func (s *Seeder) date() string { return s.now.Format(time.DateOnly) }
func (s *Seeder) ts() string   { return s.now.Format(time.DateTime) }

// Client is a tblclients row.
type Client struct {
	FirstName, LastName, Email string
	Language                   string // "" = panel default
	CompanyName                string
}

// Client inserts a client and returns its id.
func (s *Seeder) Client(ctx context.Context, c Client) (int64, error) {
	if c.FirstName == "" {
		c.FirstName = "Test"
	}
	if c.LastName == "" {
		c.LastName = "Client"
	}
	if c.Email == "" {
		c.Email = "client@example.test"
	}
	return s.insert(ctx, "client", `INSERT INTO tblclients
(firstname, lastname, companyname, email, address1, address2, city, state, postcode, country, phonenumber,
 password, authmodule, authdata, currency, defaultgateway, credit, taxexempt, latefeeoveride, overideduenotices,
 separateinvoices, disableautocc, datecreated, notes, billingcid, securityqid, securityqans, groupid,
 cardlastfour, cardnum, startdate, expdate, issuenumber, bankname, banktype, bankcode, bankacct, gatewayid,
 ip, host, status, language, pwresetkey, emailoptout, overrideautoclose, created_at, updated_at)
VALUES (?, ?, ?, ?, 'Street 1', '', 'City', 'State', '12345', 'DE', '',
 '', '', '', 1, '', 0, 0, 0, 0,
 0, 0, ?, '', 0, 0, '', 0,
 '', '', '', '', '', '', '', '', '', '',
 '', '', 'Active', ?, '', 0, 0, ?, ?)`,
		c.FirstName, c.LastName, c.CompanyName, c.Email, s.date(), c.Language, s.ts(), s.ts())
}

// Server is a tblservers row: one Proxmox endpoint, as the module's server
// settings say: Username the API token id (or user), Password the token
// secret (stored encrypted, as WHMCS does, with StandinCCHash), AccessHash
// the TLS fingerprint to pin.
type Server struct {
	Name, Hostname, IPAddress string
	Port                      int // 0 = 8006
	Type                      string
	Username, AccessHash      string
	Password                  string // plain text; written encrypted
	Secure                    bool
}

// Server inserts a server and returns its id.
func (s *Seeder) Server(ctx context.Context, v Server) (int64, error) {
	if v.Name == "" {
		v.Name = "pve1"
	}
	if v.Hostname == "" {
		v.Hostname = "127.0.0.1"
	}
	if v.Port == 0 {
		v.Port = 8006
	}
	if v.Type == "" {
		v.Type = "pvekeep"
	}
	secure := ""
	if v.Secure {
		secure = "on"
	}
	password := ""
	if v.Password != "" {
		var err error
		if password, err = Encrypt(StandinCCHash, v.Password); err != nil {
			return 0, fmt.Errorf("insert server: encrypt password: %w", err)
		}
	}
	return s.insert(ctx, "server", `INSERT INTO tblservers
(name, ipaddress, assignedips, hostname, noc, statusaddress, nameserver1, nameserver1ip, nameserver2,
 nameserver2ip, nameserver3, nameserver3ip, nameserver4, nameserver4ip, nameserver5, nameserver5ip,
 type, username, password, accesshash, secure, port, active, disabled)
VALUES (?, ?, '', ?, '', '', '', '', '', '', '', '', '', '', '', '', ?, ?, ?, ?, ?, ?, 1, 0)`,
		v.Name, v.IPAddress, v.Hostname, v.Type, v.Username, password, v.AccessHash, secure, v.Port)
}

// Product is a tblproducts row of the pvekeep module. The first four
// module settings have names (DESIGN §8); Settings sets any configoptionN
// (1..24) directly and wins over the named ones.
type Product struct {
	Name                 string
	ServerType           string // "" = pvekeep
	BackupStorage        string // configoption1
	BackupsQuota         int    // configoption2
	SnapshotsQuota       int    // configoption3
	SnapshotLifetimeDays int    // configoption4, 0 = keep
	Settings             map[int]string
}

// Product inserts a product (with its product group) and returns its id.
func (s *Seeder) Product(ctx context.Context, p Product) (int64, error) {
	if p.Name == "" {
		p.Name = "VPS"
	}
	if p.ServerType == "" {
		p.ServerType = "pvekeep"
	}
	var opts [24]string
	opts[0] = p.BackupStorage
	opts[1] = strconv.Itoa(p.BackupsQuota)
	opts[2] = strconv.Itoa(p.SnapshotsQuota)
	opts[3] = strconv.Itoa(p.SnapshotLifetimeDays)
	for n, v := range p.Settings {
		if n < 1 || n > 24 {
			return 0, fmt.Errorf("insert product: configoption%d does not exist", n)
		}
		opts[n-1] = v
	}
	gid, err := s.insert(ctx, "product group", `INSERT INTO tblproductgroups
(name, orderfrmtpl, disabledgateways, hidden, created_at, updated_at) VALUES ('VPS', '', '', 0, ?, ?)`, s.ts(), s.ts())
	if err != nil {
		return 0, err
	}
	args := []any{gid, p.Name, p.ServerType}
	for _, o := range opts {
		args = append(args, o)
	}
	args = append(args, s.ts(), s.ts())
	return s.insert(ctx, "product", `INSERT INTO tblproducts
(type, gid, name, description, hidden, showdomainoptions, stockcontrol, proratabilling, proratadate,
 proratachargenextmonth, paytype, allowqty, subdomain, autosetup, servertype, servergroup,
 configoption1, configoption2, configoption3, configoption4, configoption5, configoption6, configoption7,
 configoption8, configoption9, configoption10, configoption11, configoption12, configoption13, configoption14,
 configoption15, configoption16, configoption17, configoption18, configoption19, configoption20,
 configoption21, configoption22, configoption23, configoption24,
 freedomain, freedomainpaymentterms, freedomaintlds, recurringcycles, autoterminatedays, configoptionsupgrade,
 billingcycleupgrade, overagesenabled, overagesdisklimit, overagesbwlimit, overagesdiskprice, overagesbwprice,
 tax, affiliateonetime, affiliatepaytype, affiliatepayamount, retired, is_featured, color, tagline,
 short_description, created_at, updated_at)
VALUES ('server', ?, ?, '', 0, 0, 0, 0, 0,
 0, 'recurring', 0, '', '', ?, 0,
 ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
 '', '', '', 0, 0, 0,
 '', '', 0, 0, 0, 0,
 0, 0, '', 0, 0, 0, '', '',
 '', ?, ?)`, args...)
}

// SetProductSetting sets tblproducts.configoption<n> (1..24).
func (s *Seeder) SetProductSetting(ctx context.Context, productID int64, n int, value string) error {
	if n < 1 || n > 24 {
		return fmt.Errorf("set product %d setting: configoption%d does not exist", productID, n)
	}
	if _, err := s.db.ExecContext(ctx, fmt.Sprintf("UPDATE tblproducts SET configoption%d = ? WHERE id = ?", n), value, productID); err != nil {
		return fmt.Errorf("set product %d configoption%d: %w", productID, n, err)
	}
	return nil
}

// OptionType is tblproductconfigoptions.optiontype.
type OptionType int

const (
	Dropdown OptionType = 1
	Radio    OptionType = 2
	YesNo    OptionType = 3
	Quantity OptionType = 4
)

// OptionGroup inserts a configurable option group linked to the given
// products and returns its id.
func (s *Seeder) OptionGroup(ctx context.Context, name string, productIDs ...int64) (int64, error) {
	gid, err := s.insert(ctx, "option group", "INSERT INTO tblproductconfiggroups (name, description) VALUES (?, '')", name)
	if err != nil {
		return 0, err
	}
	for _, pid := range productIDs {
		if err := s.LinkOptionGroup(ctx, gid, pid); err != nil {
			return 0, err
		}
	}
	return gid, nil
}

// LinkOptionGroup links an option group to a product.
func (s *Seeder) LinkOptionGroup(ctx context.Context, groupID, productID int64) error {
	_, err := s.insert(ctx, "option group link", "INSERT INTO tblproductconfiglinks (gid, pid) VALUES (?, ?)", groupID, productID)
	return err
}

// Option is a configurable option. Name is "Name" or "Name|Display";
// Subs are the sub-options of a dropdown/radio ("value|Display Name"),
// or the single sub-option WHMCS keeps for yes/no and quantity options
// (defaulted when empty).
type Option struct {
	GroupID  int64
	Name     string
	Type     OptionType
	Subs     []string
	Min, Max int
}

// OptionRef is an inserted option: its id and its sub-options' ids in the
// order given.
type OptionRef struct {
	ID     int64
	SubIDs []int64
}

// Option inserts a configurable option and its sub-options.
func (s *Seeder) Option(ctx context.Context, o Option) (OptionRef, error) {
	if o.Type == 0 {
		o.Type = Dropdown
	}
	if len(o.Subs) == 0 && (o.Type == YesNo || o.Type == Quantity) {
		o.Subs = []string{"1"}
	}
	id, err := s.insert(ctx, "option "+o.Name, `INSERT INTO tblproductconfigoptions
(gid, optionname, optiontype, qtyminimum, qtymaximum, hidden) VALUES (?, ?, ?, ?, ?, 0)`,
		o.GroupID, o.Name, strconv.Itoa(int(o.Type)), o.Min, o.Max)
	if err != nil {
		return OptionRef{}, err
	}
	ref := OptionRef{ID: id}
	for i, sub := range o.Subs {
		sid, err := s.insert(ctx, "sub-option "+sub, `INSERT INTO tblproductconfigoptionssub
(configid, optionname, sortorder, hidden) VALUES (?, ?, ?, 0)`, id, sub, i)
		if err != nil {
			return OptionRef{}, err
		}
		ref.SubIDs = append(ref.SubIDs, sid)
	}
	return ref, nil
}

// Choice is a service's chosen value of one option: SubID for dropdown and
// radio, Qty for yes/no (0/1) and quantity.
type Choice struct {
	OptionID int64
	SubID    int64
	Qty      int
}

// Service is a tblhosting row. VMID, when not "", is written as the value
// of the product's "vmid" custom field (created on first use).
type Service struct {
	ClientID, ProductID, ServerID int64
	Status                        string // "" = Active
	Domain                        string
	VMID                          string
	Options                       []Choice
}

// Service inserts a service with its chosen options and vmid field value
// and returns its id.
func (s *Seeder) Service(ctx context.Context, v Service) (int64, error) {
	if v.Status == "" {
		v.Status = "Active"
	}
	if v.Domain == "" {
		v.Domain = "vm.example.test"
	}
	id, err := s.insert(ctx, "service", `INSERT INTO tblhosting
(userid, orderid, packageid, server, regdate, domain, paymentmethod, firstpaymentamount, amount, billingcycle,
 nextduedate, nextinvoicedate, domainstatus, username, password, notes, subscriptionid, promoid, suspendreason,
 overideautosuspend, overidesuspenduntil, dedicatedip, assignedips, ns1, ns2, created_at, updated_at)
VALUES (?, 0, ?, ?, ?, ?, 'banktransfer', 0, 0, 'Monthly',
 ?, ?, ?, 'root', '', '', '', 0, '',
 0, '0000-00-00', '', '', '', '', ?, ?)`,
		v.ClientID, v.ProductID, v.ServerID, s.date(), v.Domain, s.date(), s.date(), v.Status, s.ts(), s.ts())
	if err != nil {
		return 0, err
	}
	for _, c := range v.Options {
		if err := s.SetOption(ctx, id, c); err != nil {
			return 0, err
		}
	}
	if v.VMID != "" {
		if err := s.SetVMIDField(ctx, id, v.ProductID, v.VMID); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// SetServiceStatus sets tblhosting.domainstatus.
func (s *Seeder) SetServiceStatus(ctx context.Context, serviceID int64, status string) error {
	if _, err := s.db.ExecContext(ctx, "UPDATE tblhosting SET domainstatus = ? WHERE id = ?", status, serviceID); err != nil {
		return fmt.Errorf("set service %d status: %w", serviceID, err)
	}
	return nil
}

// SetServiceProduct moves a service to another product (an upgrade),
// leaving its old option rows behind as WHMCS does.
func (s *Seeder) SetServiceProduct(ctx context.Context, serviceID, productID int64) error {
	if _, err := s.db.ExecContext(ctx, "UPDATE tblhosting SET packageid = ? WHERE id = ?", productID, serviceID); err != nil {
		return fmt.Errorf("set service %d product: %w", serviceID, err)
	}
	return nil
}

// SetOption records (or replaces) the service's choice for one option.
func (s *Seeder) SetOption(ctx context.Context, serviceID int64, c Choice) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM tblhostingconfigoptions WHERE relid = ? AND configid = ?", serviceID, c.OptionID); err != nil {
		return fmt.Errorf("set option %d of service %d: %w", c.OptionID, serviceID, err)
	}
	if _, err := s.insert(ctx, "service option", `INSERT INTO tblhostingconfigoptions
(relid, configid, optionid, qty) VALUES (?, ?, ?, ?)`, serviceID, c.OptionID, c.SubID, c.Qty); err != nil {
		return fmt.Errorf("set option %d of service %d: %w", c.OptionID, serviceID, err)
	}
	return nil
}

// VMIDField returns the id of the product's "vmid|VM ID" custom field,
// creating it when missing.
func (s *Seeder) VMIDField(ctx context.Context, productID int64) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT id FROM tblcustomfields
WHERE type = 'product' AND relid = ? AND SUBSTRING_INDEX(fieldname, '|', 1) = 'vmid' ORDER BY id LIMIT 1`, productID).Scan(&id)
	if err == nil {
		return id, nil
	}
	if err != sql.ErrNoRows {
		return 0, fmt.Errorf("find vmid field of product %d: %w", productID, err)
	}
	return s.insert(ctx, "vmid custom field", `INSERT INTO tblcustomfields
(type, relid, fieldname, fieldtype, description, fieldoptions, regexpr, adminonly, required, showorder,
 showinvoice, created_at, updated_at)
VALUES ('product', ?, 'vmid|VM ID', 'text', 'Proxmox VM id', '', '', 'on', '', '', '', ?, ?)`, productID, s.ts(), s.ts())
}

// SetVMIDField writes the service's value of the product's vmid custom
// field (raw text, as an admin would type it).
func (s *Seeder) SetVMIDField(ctx context.Context, serviceID, productID int64, value string) error {
	fid, err := s.VMIDField(ctx, productID)
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM tblcustomfieldsvalues WHERE fieldid = ? AND relid = ?", fid, serviceID); err != nil {
		return fmt.Errorf("set vmid field of service %d: %w", serviceID, err)
	}
	_, err = s.insert(ctx, "vmid field value", `INSERT INTO tblcustomfieldsvalues
(fieldid, relid, value, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`, fid, serviceID, value, s.ts(), s.ts())
	return err
}
