void nf_reinject(struct nf_queue_entry *entry, unsigned int verdict)
{
}
