-- a small class: Account.new(id) then account:balance(); the method builds the key from the id
local Account = {}
Account.__index = Account
function Account.new(id)
  local self = {id = id}
  setmetatable(self, Account)
  return self
end
function Account:balance()
  return redis.call('HGET', 'account:' .. self.id, 'balance')
end
return Account.new(ARGV[1]):balance()
